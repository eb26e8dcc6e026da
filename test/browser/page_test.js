// The page of diffclip serve in a real browser: Debian's chromium driven by playwright-core
// (test/scripts/test_serve_page.sh starts the server and runs this).
// usage: node page_test.js URL PHOTO SCREENSHOT_DIR
// Uploads a photo, ticks an attribute and moves its slider, mixes a second one, checking
// each time that the edit shown changes (a digest of its pixels); shows the transition;
// fine-tunes a new attribute from the page and watches it finish. Screenshots go to
// SCREENSHOT_DIR. Prints PASS/FAIL lines and the closing count test/run.sh reads.
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

const [url, photo, shots] = process.argv.slice(2);
const TIMEOUT = 120000;
let passed = 0, failed = 0;
function check(name, ok, detail) {
  if (ok) { passed++; console.log("PASS page/" + name); }
  else { failed++; console.log("FAIL page/" + name + ": " + (detail || "")); }
}

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "diffclip-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run"],
    viewport: { width: 1280, height: 900 },
  });
  try {
    const page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    const external = [];
    page.on("request", (r) => { if (!r.url().startsWith(url) && !r.url().startsWith("blob:") &&
                                    !r.url().startsWith("data:")) external.push(r.url()); });
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));

    await page.goto(url);
    await page.waitForFunction(() => document.querySelectorAll(".attr").length >= 2);
    const names = await page.$$eval(".attr", (rows) => rows.map((r) => r.dataset.name));
    check("lists_models", names.join(",") === "angry.delta,b.pt", names.join(","));

    // Small step counts: the tiny model is 32x32, and the test should be quick.
    await page.fill("#t0", "300");
    await page.fill("#inv_steps", "8");
    await page.fill("#gen_steps", "4");

    const shown = async (seq) => {
      await page.waitForFunction((n) => Number(document.getElementById("edited").dataset.seq) >= n, seq);
      return page.$eval("#edited", (img) => img.dataset.hash);
    };
    await page.setInputFiles("#file", photo);
    const reconstruction = await shown(1);
    check("upload_shows_edit", !!reconstruction);
    check("original_shown", await page.$eval("#original", (img) => !img.hidden && img.naturalWidth > 0));

    const bRow = '.attr[data-name="b.pt"]';
    await page.check(bRow + " input[type=checkbox]");
    const ticked = await shown(2);
    check("ticking_changes_edit", ticked !== reconstruction, ticked + " vs " + reconstruction);

    await page.fill(bRow + " input[type=range]", "1");
    const moved = await shown(3);
    check("slider_changes_edit", moved !== ticked, moved + " vs " + ticked);
    check("slider_reuses_latent", /latent from memory/.test(await page.textContent("#status")),
          await page.textContent("#status"));

    const aRow = '.attr[data-name="angry.delta"]';
    await page.fill(bRow + " input[type=range]", "0.5");
    await shown(4);
    await page.fill(aRow + " input[type=range]", "0.5");   // ticks it as well
    const mixed = await shown(5);
    check("two_attributes_mixed", mixed !== moved &&
          await page.isChecked(aRow + " input[type=checkbox]"));

    await page.fill("#count", "4");
    await page.click("#transition");
    await page.waitForFunction(() => {
      const s = document.getElementById("strip");
      return s.style.display === "block" && s.complete && s.naturalWidth > 0;
    });
    const strip = await page.$eval("#strip", (img) => [img.naturalWidth, img.naturalHeight]);
    check("transition_strip", strip[0] === 4 * 32 && strip[1] === 32, strip.join("x"));
    await page.screenshot({ path: path.join(shots, "serve-page.png"), fullPage: true });

    // Fine-tuning from the page.
    await page.setInputFiles("#ft_images", photo);
    await page.fill("#ft_trg", "happy face");
    await page.fill("#ft_name", "happy");
    await page.fill("#ft_epochs", "1");
    await page.fill("#ft_train_steps", "2");
    await page.fill("#ft_lr", "0.001");
    await page.fill("#ft_t0", "300");
    await page.click("#ft_start");
    await page.waitForFunction(() => /happy\.delta: done/.test(document.getElementById("jobstatus").textContent));
    await page.waitForFunction(() => document.querySelector('.attr[data-name="happy.delta"]'));
    check("finetune_from_page", true);
    check("progress_bar_full", await page.$eval("#jobbar", (p) => p.value === 1));
    await page.screenshot({ path: path.join(shots, "serve-page-finetuned.png"), fullPage: true });

    check("no_external_requests", external.length === 0, external.join(" "));
    check("no_script_errors", errors.length === 0, errors.join(" | "));
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((e) => { check("run", false, String(e && e.stack || e)); }).finally(() => {
  console.log(passed + " passed, " + failed + " failed, 0 skipped");
  process.exit(failed ? 1 : 0);
});
