#!/usr/bin/python3
"""Trains the demo's independent judge: a small CNN classifying Fashion-MNIST images in the
models' form (3 x 32 x 32 in [-1, 1]), trained on the training split only; its test-split
accuracy goes into the JSON report. It shares nothing with the CLIP or the DDPM.

usage: train_classifier.py OUT_DIR [--epochs N] [--threads T]
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1)
        self.bn1, self.bn2, self.bn3 = nn.BatchNorm2d(32), nn.BatchNorm2d(64), nn.BatchNorm2d(128)
        self.fc = nn.Linear(128 * 4 * 4, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = F.max_pool2d(F.relu(self.bn3(self.conv3(x))), 2)
        return self.fc(F.dropout(x.flatten(1), 0.3, self.training))


def load(path):
    model = Classifier()
    model.load_state_dict(torch.load(path))
    return model.eval()


def predict(model, x, batch=500):
    """Class indices of float32 (N, 3, 32, 32) images in [-1, 1]."""
    out = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            out.append(model(torch.as_tensor(x[i:i + batch])).argmax(1))
    return torch.cat(out).numpy()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    common.seed_everything(args.seed)
    start = time.time()
    images, labels = common.load_split("train")
    test_images, test_labels = common.load_split("t10k")
    data = torch.from_numpy(common.to_model_images(images))
    lab = torch.from_numpy(labels)
    model = Classifier()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        perm = torch.randperm(data.shape[0], generator=gen)
        for i in range(0, data.shape[0], args.batch):
            idx = perm[i:i + args.batch]
            loss = F.cross_entropy(model(data[idx]), lab[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        print(f"epoch {epoch + 1}/{args.epochs} loss {float(loss):.4f} {common.elapsed(start)} s",
              flush=True)
    model.eval()
    pred = predict(model, common.to_model_images(test_images))
    accuracy = float((pred == test_labels).mean())
    print(f"test accuracy {accuracy:.4f}", flush=True)
    path = os.path.join(args.out, "classifier.pt")
    torch.save(model.state_dict(), path + ".tmp")
    os.replace(path + ".tmp", path)
    common.write_report(os.path.join(args.out, "classifier_report.json"), {
        "command": " ".join(sys.argv), "epochs": args.epochs, "seconds": common.elapsed(start),
        "machine": common.machine_description(), "test_accuracy": accuracy,
        "per_class_test_accuracy": {c: float((pred[test_labels == k] == k).mean())
                                    for k, c in enumerate(common.CLASSES)}})


if __name__ == "__main__":
    main()
