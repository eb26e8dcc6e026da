#include "idnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "params.h"

/* Every weight is computed in float32. */
#define LOAD(ld, out, shape, ...) NN_LOAD(ld, DC_FLOAT32, out, shape, __VA_ARGS__)

/* bottleneck_IR_SE: res = BN, conv3x3, PReLU, conv3x3 (stride), BN, SE; plus a shortcut that
 * is MaxPool2d(1, stride) (a strided subsample) when channels match, else conv1x1 + BN. */
typedef struct idnet_unit {
    int stride;
    nn_batch_norm bn_in, bn_out, short_bn;
    ct_tensor *conv1, *prelu, *conv2, *se_fc1, *se_fc2, *short_conv; /* se/short may be NULL */
} idnet_unit;

struct nn_idnet {
    int device;
    int64_t input_size, feature_dim;
    nn_weights weights;
    ct_tensor *in_conv, *in_prelu, *fc_w, *fc_b;
    nn_batch_norm in_bn, out_bn2d, out_bn1d;
    int units;
    idnet_unit *unit;
};

static int load_unit(const nn_loader *ld, int i, int64_t in, int64_t *out_channels,
                     idnet_unit *u)
{
    const dc_tensor *conv = nn_sd_findf(ld->sd, "body.%d.res_layer.1.weight", i);
    if (!conv || conv->ndim != 4 || conv->shape[0] < 1)
        return dci_err(DC_EFORMAT, "%s: body.%d.res_layer.1.weight missing or not 4-d",
                       ld->label, i);
    int64_t d = conv->shape[0];
    /* Each stage's first unit halves the resolution; stages change depth, and the first
     * stage starts at the input layer's depth. */
    u->stride = (i == 0 || in != d) ? 2 : 1;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "body.%d.res_layer.0", i);
    DCI_TRY(nn_load_batch_norm(ld, &u->bn_in, in, prefix));
    DCI_TRY(LOAD(ld, &u->conv1, (d, in, 3, 3), "body.%d.res_layer.1.weight", i));
    DCI_TRY(LOAD(ld, &u->prelu, (d), "body.%d.res_layer.2.weight", i));
    DCI_TRY(LOAD(ld, &u->conv2, (d, d, 3, 3), "body.%d.res_layer.3.weight", i));
    snprintf(prefix, sizeof prefix, "body.%d.res_layer.4", i);
    DCI_TRY(nn_load_batch_norm(ld, &u->bn_out, d, prefix));
    /* mode 'ir' has no SE module */
    const dc_tensor *fc1 = nn_sd_findf(ld->sd, "body.%d.res_layer.5.fc1.weight", i);
    if (fc1) {
        int64_t r = fc1->ndim == 4 ? fc1->shape[0] : -1;
        if (r < 1)
            return dci_err(DC_EFORMAT, "%s: body.%d.res_layer.5.fc1.weight is not a 4-d "
                                       "convolution", ld->label, i);
        DCI_TRY(LOAD(ld, &u->se_fc1, (r, d, 1, 1), "body.%d.res_layer.5.fc1.weight", i));
        DCI_TRY(LOAD(ld, &u->se_fc2, (d, r, 1, 1), "body.%d.res_layer.5.fc2.weight", i));
    }
    if (nn_sd_findf(ld->sd, "body.%d.shortcut_layer.0.weight", i)) {
        DCI_TRY(LOAD(ld, &u->short_conv, (d, in, 1, 1), "body.%d.shortcut_layer.0.weight", i));
        snprintf(prefix, sizeof prefix, "body.%d.shortcut_layer.1", i);
        DCI_TRY(nn_load_batch_norm(ld, &u->short_bn, d, prefix));
    } else if (in != d) {
        return dci_err(DC_EFORMAT, "%s: body.%d changes depth %lld -> %lld without a "
                                   "shortcut convolution", ld->label, i, (long long)in,
                       (long long)d);
    }
    *out_channels = d;
    return DC_OK;
}

static int load_net(nn_idnet *net, const nn_loader *ld)
{
    const dc_tensor *in_conv = nn_sd_find(ld->sd, "input_layer.0.weight");
    if (!in_conv || in_conv->ndim != 4 || in_conv->shape[0] < 1)
        return dci_err(DC_EFORMAT, "%s: no IR-SE input_layer.0.weight", ld->label);
    int64_t c = in_conv->shape[0];
    DCI_TRY(LOAD(ld, &net->in_conv, (c, 3, 3, 3), "input_layer.0.weight"));
    DCI_TRY(nn_load_batch_norm(ld, &net->in_bn, c, "input_layer.1"));
    DCI_TRY(LOAD(ld, &net->in_prelu, (c), "input_layer.2.weight"));

    net->units = nn_sd_count(ld->sd, "body.%d.res_layer.1.weight");
    if (net->units < 1)
        return dci_err(DC_EFORMAT, "%s: IR-SE network without body units", ld->label);
    net->unit = calloc((size_t)net->units, sizeof *net->unit);
    if (!net->unit)
        return dci_err(DC_ENOMEM, "%s: out of memory for %d units", ld->label, net->units);
    int strides = 0;
    for (int i = 0; i < net->units; i++) {
        DCI_TRY(load_unit(ld, i, c, &c, &net->unit[i]));
        strides += net->unit[i].stride == 2;
    }

    DCI_TRY(nn_load_batch_norm(ld, &net->out_bn2d, c, "output_layer.0"));
    const dc_tensor *fc = nn_sd_find(ld->sd, "output_layer.3.weight");
    if (!fc || fc->ndim != 2 || fc->shape[0] < 1 || fc->shape[1] % c != 0)
        return dci_err(DC_EFORMAT, "%s: output_layer.3.weight missing or not (E, %lld * h * w)",
                       ld->label, (long long)c);
    /* Linear(C * side^2): the input side is that side times the strides. */
    int64_t cells = fc->shape[1] / c, side = (int64_t)llround(sqrt((double)cells));
    if (side < 1 || side * side != cells || strides > 20)
        return dci_err(DC_EFORMAT, "%s: output_layer.3 expects %lld cells per channel, not a "
                                   "square grid", ld->label, (long long)cells);
    net->input_size = side << strides;
    net->feature_dim = fc->shape[0];
    DCI_TRY(LOAD(ld, &net->fc_w, (net->feature_dim, c * cells), "output_layer.3.weight"));
    DCI_TRY(LOAD(ld, &net->fc_b, (net->feature_dim), "output_layer.3.bias"));
    return nn_load_batch_norm(ld, &net->out_bn1d, net->feature_dim, "output_layer.4");
}

int nn_idnet_load(nn_idnet **out, const io_state_dict *sd, const char *label, int device)
{
    *out = NULL;
    DCI_TRY(nn_check_no_pool(label));
    nn_idnet *net = calloc(1, sizeof *net);
    if (!net)
        return dci_err(DC_ENOMEM, "out of memory for an identity network");
    net->device = device;
    nn_loader ld = {sd, label, device, &net->weights};
    int st = load_net(net, &ld);
    if (st != DC_OK) {
        nn_idnet_free(net);
        return st;
    }
    *out = net;
    return DC_OK;
}

void nn_idnet_free(nn_idnet *net)
{
    if (!net)
        return;
    nn_weights_free(&net->weights);
    free(net->unit);
    free(net);
}

int nn_idnet_device(const nn_idnet *net) { return net->device; }
int64_t nn_idnet_input_size(const nn_idnet *net) { return net->input_size; }
int64_t nn_idnet_feature_dim(const nn_idnet *net) { return net->feature_dim; }

/* ---- forward: runs inside the pool nn_idnet_forward opens ---- */

/* SEModule: x * sigmoid(fc2(relu(fc1(avgpool(x))))) */
static int squeeze_excite(ct_tensor **out, const idnet_unit *u, const ct_tensor *x)
{
    ct_tensor *pooled, *a, *r, *b, *gate;
    DCI_TRY(ct_adaptive_avg_pool2d(&pooled, x, 1, 1));
    DCI_TRY(ct_conv2d(&a, pooled, u->se_fc1, NULL, 1, 0));
    DCI_TRY(ct_relu(&r, a));
    DCI_TRY(ct_conv2d(&b, r, u->se_fc2, NULL, 1, 0));
    DCI_TRY(ct_sigmoid(&gate, b));
    return ct_mul(out, x, gate);
}

static int unit_forward(ct_tensor **out, const idnet_unit *u, const ct_tensor *x)
{
    ct_tensor *shortcut, *n0, *c1, *p, *c2, *n4, *res;
    if (u->short_conv) {
        ct_tensor *sc;
        DCI_TRY(ct_conv2d(&sc, x, u->short_conv, NULL, u->stride, 0));
        DCI_TRY(nn_batch_norm_forward(&shortcut, sc, &u->short_bn));
    } else {
        DCI_TRY(ct_max_pool2d(&shortcut, x, 1, u->stride, 0));
    }
    DCI_TRY(nn_batch_norm_forward(&n0, x, &u->bn_in));
    DCI_TRY(ct_conv2d(&c1, n0, u->conv1, NULL, 1, 1));
    DCI_TRY(ct_prelu(&p, c1, u->prelu));
    DCI_TRY(ct_conv2d(&c2, p, u->conv2, NULL, u->stride, 1));
    DCI_TRY(nn_batch_norm_forward(&n4, c2, &u->bn_out));
    res = n4;
    if (u->se_fc1)
        DCI_TRY(squeeze_excite(&res, u, n4));
    return ct_add(out, res, shortcut);
}

static int forward(ct_tensor **out, const void *model, const ct_tensor *x)
{
    const nn_idnet *net = model;
    ct_tensor *xin, *c, *n, *h, *o, *flat, *lin, *emb, *norm;
    DCI_TRY(ct_to(&xin, x, DC_FLOAT32, net->device));
    DCI_TRY(ct_conv2d(&c, xin, net->in_conv, NULL, 1, 1));
    DCI_TRY(nn_batch_norm_forward(&n, c, &net->in_bn));
    DCI_TRY(ct_prelu(&h, n, net->in_prelu));
    for (int i = 0; i < net->units; i++) {
        ct_tensor *y = NULL;
        size_t mark = ct_pool_begin();
        int st = unit_forward(&y, &net->unit[i], h);
        ct_pool_end(mark, &y, st == DC_OK);
        DCI_TRY(st);
        h = y;
    }
    /* output_layer: BN2d, Dropout (identity in eval), Flatten, Linear, BN1d; then l2_norm */
    DCI_TRY(nn_batch_norm_forward(&o, h, &net->out_bn2d));
    DCI_TRY(ct_flatten(&flat, o, 1, -1));
    DCI_TRY(ct_linear(&lin, flat, net->fc_w, net->fc_b));
    DCI_TRY(nn_batch_norm_forward(&emb, lin, &net->out_bn1d));
    DCI_TRY(ct_norm_dim(&norm, emb, 1, 1));
    return ct_div(out, emb, norm);
}

int nn_idnet_forward(const nn_idnet *net, const ct_tensor *x, ct_tensor **features)
{
    *features = NULL;
    dc_dtype dt = ct_dtype(x);
    if (ct_ndim(x) != 4 || ct_size(x, 0) < 1 || ct_size(x, 1) != 3 ||
        ct_size(x, 2) != net->input_size || ct_size(x, 3) != net->input_size ||
        (dt != DC_FLOAT32 && dt != DC_FLOAT16 && dt != DC_FLOAT64 && dt != DC_BFLOAT16))
        return dci_err(DC_EINVAL, "identity network: expected a floating-point (N, 3, %lld, "
                                  "%lld) tensor", (long long)net->input_size,
                       (long long)net->input_size);
    return nn_run_pooled(features, net, x, forward);
}
