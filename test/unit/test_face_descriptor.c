/* The face descriptor (face-api's FaceRecognitionNet): the network on synthetic weights
 * against a direct NHWC rendering of face-api's TensorFlow ops (tfjs layouts, 'same' and
 * 'valid' paddings computed as TensorFlow does), weight checks, and on real photographs from
 * Debian packages with the npm weights (make deps): two crops of the astronaut are the same
 * person, the astronaut and Grace Hopper are not, and the descriptors equal face-api's own
 * (JavaScript, tfjs 4.22 cpu backend; test/tools/faceapi_reference.cjs printed the tables
 * below from the same 150x150 crops). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctorch/ctorch.h"
#include "harness.h"
#include "io/tfjs.h"
#include "nn/face_descriptor.h"

#define ASTRONAUT "/usr/lib/python3/dist-packages/skimage/data/astronaut.png"  /* python3-skimage */
#define HOPPER "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg" /* python-matplotlib-data */
#define MANIFEST "face_recognition_model-weights_manifest.json"
#define WEIGHTS "face_recognition_model.bin"

/* Boxes chosen by looking at the photographs: eyebrows to chin, ear to ear. */
static const dc_face_box ASTRONAUT_BOX = {168, 72, 114};
static const dc_face_box ASTRONAUT_WIDER_BOX = {160, 66, 128};   /* shifted and scaled */
static const dc_face_box HOPPER_BOX = {168, 136, 196};
/* The loads of these tests run on the CPU. */
static const dc_face_descriptor_options CPU = {DC_FACE_DESCRIPTOR_OPTIONS_VERSION, "cpu"};

/* face-api's computeFaceDescriptor of dc_face_crop(ASTRONAUT, ASTRONAUT_BOX, 150) and of
 * dc_face_crop(HOPPER, HOPPER_BOX, 150). */
static const float ASTRONAUT_REFERENCE[DC_FACE_DESCRIPTOR_SIZE] = {
    -0.059563946f, 0.0267294161f, -0.022381667f, -0.0321504734f, -0.148873493f, -0.00677473284f,
    -0.0255989637f, -0.145805672f, 0.106465355f, -0.164643943f, 0.165860772f, -0.0315416567f,
    -0.266380817f, -0.0209887773f, -0.00324814185f, 0.151891008f, -0.156698063f, -0.180183455f,
    -0.16327098f, -0.0979501233f, 0.0288720988f, 0.0394757986f, -0.0170959085f, 0.0602416992f,
    -0.254930973f, -0.258702248f, -0.063966766f, -0.0962759703f, -0.00274781696f,
    -0.0771455616f, -0.0214031693f, 0.0636266768f, -0.0818104669f, 0.0513575375f, 0.108072527f,
    0.119744278f, -0.0177183356f, -0.111134268f, 0.117312118f, -0.0624271594f, -0.231107935f,
    -0.031500306f, 0.0570883639f, 0.207672209f, 0.263479143f, -0.0208403524f, -0.00753610814f,
    -0.106964134f, 0.133244693f, -0.294519931f, 0.0119194109f, 0.0726722181f, 0.0241833106f,
    0.0897177309f, 0.0440712422f, -0.18752259f, 0.0220068097f, 0.21351248f, -0.236745253f,
    -0.0716530308f, 0.0138112251f, -0.136812985f, -0.0380843021f, -0.044485718f, 0.173070148f,
    0.108024068f, -0.19403483f, -0.106457956f, 0.18811895f, -0.258696079f, -0.0175762009f,
    0.0375429988f, -0.0900840461f, -0.202124268f, -0.295369714f, -0.0153666278f, 0.477126002f,
    0.21379298f, -0.160338655f, -0.0193208512f, -0.0234960914f, 0.0360559933f, 0.0623945594f,
    0.0447718985f, -0.0841919556f, -0.0836158469f, -0.120923683f, 0.0371931195f, 0.213490531f,
    -0.0231236443f, 0.0206278618f, 0.231749952f, 0.02718799f, -0.0250317454f, 0.0687690303f,
    0.0884966925f, -0.155032068f, -0.0540851094f, -0.0984915569f, -0.0152346073f, -0.048988197f,
    -0.0696145818f, 0.0431754142f, 0.161556512f, -0.116545364f, 0.217132732f, -0.029285267f,
    -0.0362688676f, -0.0210164767f, -0.0419541337f, -0.0428002663f, -0.0604381487f,
    0.137564868f, -0.25406003f, 0.040356718f, 0.180738911f, 0.102354109f, 0.208118007f,
    0.0238943286f, 0.0477041155f, -0.0441783927f, -0.0413644873f, -0.225014895f, -0.0403327569f,
    0.0421959274f, -0.0754311308f, 0.0312785916f, 0.00338916527f,
};

static const float HOPPER_REFERENCE[DC_FACE_DESCRIPTOR_SIZE] = {
    -0.0698769689f, 0.0166593548f, 0.0745087788f, 0.0226857755f, -0.101846963f, -0.0647216961f,
    0.00576038146f, -0.163295999f, 0.0979477987f, -0.103745297f, 0.17347455f, -0.059079729f,
    -0.318969339f, 0.0312482044f, -0.0815837309f, 0.166342139f, -0.154684454f, -0.0827924162f,
    -0.0995613113f, -0.077710025f, -0.0100190127f, 0.0220636241f, 0.00294922595f, 0.0158689767f,
    -0.104244612f, -0.271960616f, -0.0304425079f, -0.0232643411f, 0.00528283836f,
    -0.0671503097f, -0.0140469018f, 0.0814946592f, -0.195207059f, -0.036467541f, 0.0454614162f,
    0.136810571f, -0.0994523615f, -0.0761216581f, 0.295908958f, 0.0495660268f, -0.193427995f,
    0.0116091836f, 0.0373737104f, 0.203905612f, 0.227564365f, -0.0745559558f, -0.0602231473f,
    -0.0694147274f, 0.157344133f, -0.287829787f, -0.0327867456f, 0.177899301f, 0.128925517f,
    0.113316923f, -0.0287283007f, -0.0994713977f, -0.0353439413f, 0.180504531f, -0.248076916f,
    -0.00559221162f, 0.0848152861f, -0.216047361f, 0.00909201149f, -0.0550886914f, 0.147694483f,
    0.111696288f, -0.131246924f, -0.0956039056f, 0.190695956f, -0.172784686f, -0.0344558321f,
    -0.00258390931f, -0.0461913832f, -0.132119954f, -0.263068169f, 0.0316407457f, 0.362404197f,
    0.103966609f, -0.135957256f, -0.0425586253f, -0.118298404f, -0.102379806f, -0.0183098279f,
    0.0326573625f, -0.00507305562f, -0.0684780106f, -0.0435763262f, 0.00876314286f,
    0.170006484f, -0.0185545348f, 0.00444760406f, 0.192914188f, -0.0304847863f, 0.0233317744f,
    0.0465939455f, 0.060177207f, -0.226053655f, -0.0536940061f, -0.144992873f, -0.0693228692f,
    -0.074129343f, -0.131631315f, 0.12294665f, 0.128565878f, -0.125769466f, 0.211997166f,
    -0.0515324809f, -0.044011794f, 0.039356567f, -0.0189195927f, -0.0719262511f, -0.0271081161f,
    0.153251335f, -0.189156085f, 0.242516086f, 0.0868775994f, -0.0213942323f, 0.127820224f,
    0.0581016876f, 0.0827894211f, -0.0736486316f, 0.0176707972f, -0.129429787f, -0.119537979f,
    0.0159634855f, 0.0196398962f, 0.112471826f, 0.00484559266f,
};

/* ---- synthetic weights and the NHWC reference ------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static float uniform(float lo, float hi)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((rng_state >> 40) / (double)(1ull << 24));
}

typedef struct weight_set {
    io_tfjs_weights w;
    size_t capacity;
} weight_set;

static float *add_weight(weight_set *s, const char *name, int ndim, const int64_t *shape,
                         float lo, float hi)
{
    if (s->w.count == s->capacity) {
        s->capacity = s->capacity ? 2 * s->capacity : 64;
        s->w.tensors = realloc(s->w.tensors, s->capacity * sizeof *s->w.tensors);
        if (!s->w.tensors)
            abort();
    }
    io_tensor *t = &s->w.tensors[s->w.count++];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->value.dtype = DC_FLOAT32;
    t->value.ndim = ndim;
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= t->value.shape[d] = shape[d];
    float *v = malloc((size_t)n * sizeof *v);
    if (!t->name || !v)
        abort();
    for (int64_t i = 0; i < n; i++)
        v[i] = uniform(lo, hi);
    t->value.data = v;
    return v;
}

static void add_conv(weight_set *s, const char *prefix, int k, int in, int out)
{
    char name[96];
    float a = sqrtf(3.0f / (float)(k * k * in));
    const int64_t filters[4] = {k, k, in, out}, vec[1] = {out};
    snprintf(name, sizeof name, "%s/conv/filters", prefix);
    add_weight(s, name, 4, filters, -a, a);
    snprintf(name, sizeof name, "%s/conv/bias", prefix);
    add_weight(s, name, 1, vec, -0.1f, 0.1f);
    snprintf(name, sizeof name, "%s/scale/weights", prefix);
    add_weight(s, name, 1, vec, 0.5f, 1.5f);
    snprintf(name, sizeof name, "%s/scale/biases", prefix);
    add_weight(s, name, 1, vec, -0.2f, 0.2f);
}

static const struct {
    const char *name;
    int channels;
} BLOCKS[] = {
    {"conv32_1", 32},     {"conv32_2", 32},     {"conv32_3", 32},         {"conv64_down", 64},
    {"conv64_1", 64},     {"conv64_2", 64},     {"conv64_3", 64},         {"conv128_down", 128},
    {"conv128_1", 128},   {"conv128_2", 128},   {"conv256_down", 256},    {"conv256_1", 256},
    {"conv256_2", 256},   {"conv256_down_out", 256},
};
#define BLOCK_COUNT (sizeof BLOCKS / sizeof BLOCKS[0])

static weight_set synthetic_weights(void)
{
    weight_set s = {{0, NULL}, 0};
    char name[96];
    add_conv(&s, "conv32_down", 7, 3, 32);
    int in = 32;
    for (size_t i = 0; i < BLOCK_COUNT; i++) {
        snprintf(name, sizeof name, "%s/conv1", BLOCKS[i].name);
        add_conv(&s, name, 3, in, BLOCKS[i].channels);
        snprintf(name, sizeof name, "%s/conv2", BLOCKS[i].name);
        add_conv(&s, name, 3, BLOCKS[i].channels, BLOCKS[i].channels);
        in = BLOCKS[i].channels;
    }
    const int64_t fc[2] = {256, 128};
    add_weight(&s, "fc", 2, fc, -0.1f, 0.1f);
    return s;
}

static const float *weight(const weight_set *s, const char *fmt, const char *prefix)
{
    char name[96];
    snprintf(name, sizeof name, fmt, prefix);
    const io_tensor *t = io_tfjs_find(&s->w, name);
    if (!t)
        abort();
    return t->value.data;
}

typedef struct nhwc {
    int h, w, c;
    float *v;
} nhwc;

static nhwc nhwc_new(int h, int w, int c)
{
    nhwc t = {h, w, c, calloc((size_t)h * w * c, sizeof(float))};
    if (!t.v)
        abort();
    return t;
}

#define AT(t, y, x, ch) ((t).v[(((size_t)(y) * (t).w + (x)) * (t).c) + (ch)])

/* tf.conv2d (HWIO filters) + bias, scale (mul, add), optional ReLU. */
static nhwc tf_conv_layer(const weight_set *s, const char *prefix, const nhwc *x, int k,
                          int stride, int same, int relu)
{
    const float *f = weight(s, "%s/conv/filters", prefix), *b = weight(s, "%s/conv/bias", prefix),
                *sw = weight(s, "%s/scale/weights", prefix),
                *sb = weight(s, "%s/scale/biases", prefix);
    const io_tensor *ft = NULL;
    char name[96];
    snprintf(name, sizeof name, "%s/conv/filters", prefix);
    ft = io_tfjs_find(&s->w, name);
    int cout = (int)ft->value.shape[3];
    int oh, ow, top = 0, left = 0;
    if (same) {   /* TensorFlow: out = ceil(in / stride), the odd padding pixel at the end */
        oh = (x->h + stride - 1) / stride;
        ow = (x->w + stride - 1) / stride;
        int ph = (oh - 1) * stride + k - x->h, pw = (ow - 1) * stride + k - x->w;
        top = ph > 0 ? ph / 2 : 0;
        left = pw > 0 ? pw / 2 : 0;
    } else {
        oh = (x->h - k) / stride + 1;
        ow = (x->w - k) / stride + 1;
    }
    nhwc y = nhwc_new(oh, ow, cout);
    double *acc = malloc((size_t)cout * sizeof *acc);
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++) {
            for (int co = 0; co < cout; co++)
                acc[co] = 0;
            for (int ky = 0; ky < k; ky++)
                for (int kx = 0; kx < k; kx++) {
                    int iy = oy * stride + ky - top, ix = ox * stride + kx - left;
                    if (iy < 0 || iy >= x->h || ix < 0 || ix >= x->w)
                        continue;
                    for (int ci = 0; ci < x->c; ci++) {
                        double v = AT(*x, iy, ix, ci);
                        const float *fr = f + (((size_t)ky * k + kx) * x->c + ci) * cout;
                        for (int co = 0; co < cout; co++)
                            acc[co] += v * fr[co];
                    }
                }
            for (int co = 0; co < cout; co++) {
                float v = ((float)acc[co] + b[co]) * sw[co] + sb[co];
                AT(y, oy, ox, co) = relu && v < 0 ? 0 : v;
            }
        }
    free(acc);
    return y;
}

static nhwc tf_pool_valid(const nhwc *x, int k, int stride, int is_max)
{
    nhwc y = nhwc_new((x->h - k) / stride + 1, (x->w - k) / stride + 1, x->c);
    for (int oy = 0; oy < y.h; oy++)
        for (int ox = 0; ox < y.w; ox++)
            for (int c = 0; c < x->c; c++) {
                float m = -INFINITY, sum = 0;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        float v = AT(*x, oy * stride + ky, ox * stride + kx, c);
                        m = v > m ? v : m;
                        sum += v;
                    }
                AT(y, oy, ox, c) = is_max ? m : sum / (float)(k * k);
            }
    return y;
}

/* residual / residualDown of residualLayer.ts. */
static nhwc tf_residual(const weight_set *s, const char *name, const nhwc *x, int down)
{
    char prefix[96];
    snprintf(prefix, sizeof prefix, "%s/conv1", name);
    nhwc a = tf_conv_layer(s, prefix, x, 3, down ? 2 : 1, !down, 1);
    snprintf(prefix, sizeof prefix, "%s/conv2", name);
    nhwc out = tf_conv_layer(s, prefix, &a, 3, 1, 1, 0);
    free(a.v);
    nhwc pooled = down ? tf_pool_valid(x, 2, 2, 0) : *x;
    if (pooled.h != out.h || pooled.w != out.w) {   /* concat a zero row, then a zero column */
        nhwc grown = nhwc_new(out.h + 1, out.w + 1, out.c);
        for (int y = 0; y < out.h; y++)
            for (int xx = 0; xx < out.w; xx++)
                for (int c = 0; c < out.c; c++)
                    AT(grown, y, xx, c) = AT(out, y, xx, c);
        free(out.v);
        out = grown;
    }
    for (int y = 0; y < out.h; y++)
        for (int xx = 0; xx < out.w; xx++)
            for (int c = 0; c < out.c; c++) {
                float shortcut = c < pooled.c ? AT(pooled, y, xx, c) : 0.0f;  /* zero channels */
                float v = shortcut + AT(out, y, xx, c);
                AT(out, y, xx, c) = v < 0 ? 0 : v;
            }
    if (down)
        free(pooled.v);
    return out;
}

/* forwardInput of FaceRecognitionNet.ts for one 150x150 NHWC image in 0..255. */
static void tf_forward(const weight_set *s, const float *image, float descriptor[128])
{
    static const float mean[3] = {122.782f, 117.001f, 104.298f};
    nhwc x = nhwc_new(150, 150, 3);
    for (size_t i = 0; i < (size_t)150 * 150 * 3; i++)
        x.v[i] = (image[i] - mean[i % 3]) / 255.0f;
    nhwc y = tf_conv_layer(s, "conv32_down", &x, 7, 2, 0, 1);
    free(x.v);
    x = tf_pool_valid(&y, 3, 2, 1);
    free(y.v);
    for (size_t i = 0; i < BLOCK_COUNT; i++) {
        y = tf_residual(s, BLOCKS[i].name, &x, strstr(BLOCKS[i].name, "down") != NULL);
        free(x.v);
        x = y;
    }
    const float *fc = weight(s, "%s", "fc");
    for (int o = 0; o < 128; o++) {
        double sum = 0;
        for (int c = 0; c < 256; c++) {
            double avg = 0;
            for (int p = 0; p < x.h * x.w; p++)
                avg += x.v[(size_t)p * 256 + c];
            sum += avg / (x.h * x.w) * fc[c * 128 + o];
        }
        descriptor[o] = (float)sum;
    }
    free(x.v);
}

/* The same image as (1, 3, 150, 150). */
static ct_tensor *nchw_input(const float *image)
{
    float *planar = malloc(sizeof(float) * 3 * 150 * 150);
    if (!planar)
        abort();
    for (int i = 0; i < 150 * 150; i++)
        for (int c = 0; c < 3; c++)
            planar[c * 150 * 150 + i] = image[i * 3 + c];
    const int64_t shape[4] = {1, 3, 150, 150};
    ct_tensor *t = NULL;
    if (ct_from_host(&t, planar, DC_FLOAT32, 4, shape, CT_CPU) != DC_OK)
        abort();
    free(planar);
    return t;
}

TEST(network_matches_tensorflow_semantics_on_synthetic_weights)
{
    weight_set s = synthetic_weights();
    float *image = malloc(sizeof(float) * 150 * 150 * 3);
    CHECK(image);
    for (int i = 0; i < 150 * 150 * 3; i++)
        image[i] = (float)(int)uniform(0.0f, 256.0f);
    float expected[128], got[128];
    tf_forward(&s, image, expected);

    nn_face_descriptor *net = NULL;
    int status = nn_face_descriptor_load(&net, &s.w, "synthetic", CT_CPU);
    io_tfjs_weights_free(&s.w);
    ct_tensor *x = nchw_input(image), *y = NULL;
    free(image);
    if (status == DC_OK)
        status = nn_face_descriptor_forward(net, x, &y);
    if (status == DC_OK && (ct_ndim(y) != 2 || ct_size(y, 0) != 1 || ct_size(y, 1) != 128))
        status = DC_EINTERNAL;
    if (status == DC_OK)
        status = ct_to_host(y, got, sizeof got);
    ct_free(x);
    ct_free(y);
    nn_face_descriptor_free(net);
    CHECK_OK(status);
    double rel = relative_l2(got, expected, 128);
    CHECKF(rel < 1e-5, "relative L2 %.3g, max diff %.3g", rel, max_abs_diff(got, expected, 128));
}

TEST(network_is_differentiable_and_checks_its_input)
{
    weight_set s = synthetic_weights();
    nn_face_descriptor *net = NULL;
    int status = nn_face_descriptor_load(&net, &s.w, "synthetic", CT_CPU);
    io_tfjs_weights_free(&s.w);
    CHECK_OK(status);
    size_t mark = ct_pool_begin();
    const int64_t shape[4] = {2, 3, 150, 150}, small[4] = {1, 3, 112, 112};
    ct_tensor *x, *y, *loss, *grad, *bad;
    status = ct_full(&x, 100.0, DC_FLOAT32, 4, shape, CT_CPU);
    if (status == DC_OK)
        status = ct_set_requires_grad(x, 1);
    if (status == DC_OK)
        status = nn_face_descriptor_forward(net, x, &y);
    if (status == DC_OK)
        status = ct_size(y, 0) == 2 && ct_size(y, 1) == 128 ? ct_sum(&loss, y) : DC_EINTERNAL;
    if (status == DC_OK)
        status = ct_backward(loss);
    double grad_size = 0;
    if (status == DC_OK)
        status = ct_grad(&grad, x);
    if (status == DC_OK)
        status = grad ? ct_max_abs(grad, &grad_size) : DC_EINTERNAL;
    int refused = DC_OK;
    if (status == DC_OK)
        status = ct_zeros(&bad, DC_FLOAT32, 4, small, CT_CPU);
    if (status == DC_OK)
        refused = nn_face_descriptor_forward(net, bad, &y);
    ct_pool_end(mark, NULL, 0);
    nn_face_descriptor_free(net);
    CHECK_OK(status);
    CHECK(grad_size > 0);
    CHECK(refused == DC_EINVAL);
}

TEST(load_refuses_missing_and_misshapen_weights)
{
    nn_face_descriptor *net = NULL;
    weight_set s = synthetic_weights();
    io_tensor *fc = (io_tensor *)io_tfjs_find(&s.w, "fc");
    fc->name[0] = 'F';
    CHECK_STATUS(nn_face_descriptor_load(&net, &s.w, "w.bin", CT_CPU), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "w.bin") && strstr(dc_last_error(), "\"fc\" is missing"));
    fc->name[0] = 'f';
    io_tensor *f = (io_tensor *)io_tfjs_find(&s.w, "conv128_1/conv2/conv/filters");
    f->value.shape[2] = 64;   /* numel unchanged: only the shape check can see it */
    f->value.shape[3] = 256;
    CHECK_STATUS(nn_face_descriptor_load(&net, &s.w, "w.bin", CT_CPU), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "conv128_1/conv2/conv/filters") &&
          strstr(dc_last_error(), "[3,3,64,256]") && strstr(dc_last_error(), "[3,3,128,128]"));
    f->value.shape[2] = f->value.shape[3] = 128;
    io_tensor *b = (io_tensor *)io_tfjs_find(&s.w, "conv32_down/scale/biases");
    b->value.dtype = DC_INT32;
    CHECK_STATUS(nn_face_descriptor_load(&net, &s.w, "w.bin", CT_CPU), DC_EFORMAT);
    b->value.dtype = DC_FLOAT32;
    /* Weights made inside a pool would not outlive it. */
    size_t mark = ct_pool_begin();
    int in_pool = nn_face_descriptor_load(&net, &s.w, "w.bin", CT_CPU);
    ct_pool_end(mark, NULL, 0);
    CHECK_STATUS(in_pool, DC_EINVAL);
    CHECK_OK(nn_face_descriptor_load(&net, &s.w, "w.bin", CT_CPU));
    nn_face_descriptor_free(net);
    io_tfjs_weights_free(&s.w);
    CHECK_STATUS(nn_face_descriptor_load(&net, NULL, "w.bin", CT_CPU), DC_EINVAL);
}

TEST(public_api_refuses_bad_arguments)
{
    dc_face_descriptor *fd = (dc_face_descriptor *)1;
    dc_face_descriptor_options tpu = DC_FACE_DESCRIPTOR_OPTIONS_INIT;
    tpu.device = "tpu";
    CHECK_STATUS(dc_face_descriptor_load(&fd, "/nonexistent/m.json", NULL, &CPU), DC_EIO);
    CHECK(fd == NULL);
    CHECK_STATUS(dc_face_descriptor_load(&fd, NULL, NULL, NULL), DC_EINVAL);
    CHECK_STATUS(dc_face_descriptor_load(&fd, "/nonexistent/m.json", NULL, &tpu), DC_EINVAL);
    dc_face_descriptor_free(NULL);

    uint8_t pixels[20 * 10 * 3];
    for (size_t i = 0; i < sizeof pixels; i++)
        pixels[i] = (uint8_t)(i * 7);
    dc_image img = {.width = 20, .height = 10, .channels = 3, .data = pixels}, out;
    const dc_face_box outside = {12, 2, 9}, negative = {-1, 0, 5};
    CHECK_STATUS(dc_face_crop(&img, &outside, 150, &out), DC_EINVAL);
    CHECK_STATUS(dc_face_crop(&img, &negative, 150, &out), DC_EINVAL);
    CHECK_STATUS(dc_face_crop(NULL, NULL, 150, &out), DC_EINVAL);
    /* An unscaled crop copies the pixels; NULL is the centred square (x = 5). */
    const dc_face_box box = {3, 1, 8};
    CHECK_OK(dc_face_crop(&img, &box, 8, &out));
    CHECK(out.width == 8 && out.height == 8 &&
          memcmp(out.data + 3 * (2 * 8 + 1), pixels + 3 * (3 * 20 + 4), 3) == 0);
    dc_image_free(&out);
    CHECK_OK(dc_face_crop(&img, NULL, 10, &out));
    CHECK(memcmp(out.data, pixels + 3 * 5, 30) == 0);
    dc_image_free(&out);

    float a[DC_FACE_DESCRIPTOR_SIZE] = {0}, b[DC_FACE_DESCRIPTOR_SIZE] = {0};
    a[0] = 3.0f;
    b[127] = 4.0f;
    double d = 0;
    CHECK_OK(dc_face_distance(a, b, &d));
    CHECK(d == 5.0);
    CHECK_STATUS(dc_face_distance(a, NULL, &d), DC_EINVAL);
}

/* ---- real weights, real photographs ----------------------------------------------------- */

/* `path`, or NULL after marking the test skipped (failed under CI=true, where make deps has
 * installed it). */
static const char *required_file(const char *path)
{
    if (access(path, R_OK) == 0)
        return path;
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0)
        test_fail_at(__FILE__, __LINE__, "%s is missing (make deps installs it)", path);
    else
        test_skip("%s is missing (make deps installs it)", path);
    return NULL;
}

TEST(photos_same_person_closer_than_0_6_and_match_face_api)
{
    const char *dir = getenv("DC_FACEAPI") ? getenv("DC_FACEAPI") : "third_party/face-api";
    char manifest[1024], weights[1024];
    path_join(manifest, sizeof manifest, dir, MANIFEST);
    path_join(weights, sizeof weights, dir, WEIGHTS);
    if (!required_file(manifest) || !required_file(weights) || !required_file(ASTRONAUT) ||
        !required_file(HOPPER))
        return;
    dc_face_descriptor *fd = NULL, *beside = NULL;
    CHECK_OK(dc_face_descriptor_load(&fd, manifest, weights, &CPU));
    dc_image astronaut = {0}, hopper = {0};
    float a[DC_FACE_DESCRIPTOR_SIZE], a_wide[DC_FACE_DESCRIPTOR_SIZE],
          h[DC_FACE_DESCRIPTOR_SIZE], h_again[DC_FACE_DESCRIPTOR_SIZE];
    int status = dc_image_read(ASTRONAUT, &astronaut);
    if (status == DC_OK)
        status = dc_image_read(HOPPER, &hopper);
    if (status == DC_OK)
        status = dc_face_descriptor_compute(fd, &astronaut, &ASTRONAUT_BOX, a);
    if (status == DC_OK)
        status = dc_face_descriptor_compute(fd, &astronaut, &ASTRONAUT_WIDER_BOX, a_wide);
    if (status == DC_OK)
        status = dc_face_descriptor_compute(fd, &hopper, &HOPPER_BOX, h);
    /* The manifest's own shard name, beside it, gives the same network. */
    if (status == DC_OK)
        status = dc_face_descriptor_load(&beside, manifest, NULL, &CPU);
    if (status == DC_OK)
        status = dc_face_descriptor_compute(beside, &hopper, &HOPPER_BOX, h_again);
    dc_face_descriptor_free(fd);
    dc_face_descriptor_free(beside);
    dc_image_free(&astronaut);
    dc_image_free(&hopper);
    CHECK_OK(status);
    CHECK(memcmp(h, h_again, sizeof h) == 0);

    double same, other, other_wide;
    CHECK_OK(dc_face_distance(a, a_wide, &same));
    CHECK_OK(dc_face_distance(a, h, &other));
    CHECK_OK(dc_face_distance(a_wide, h, &other_wide));
    double diff_a = max_abs_diff(a, ASTRONAUT_REFERENCE, DC_FACE_DESCRIPTOR_SIZE),
           diff_h = max_abs_diff(h, HOPPER_REFERENCE, DC_FACE_DESCRIPTOR_SIZE);
    printf("  distances: astronaut crops %.4f, astronaut / Hopper %.4f and %.4f; "
           "max |ours - face-api| %.2g (astronaut), %.2g (Hopper)\n",
           same, other, other_wide, diff_a, diff_h);
    CHECK(same < DC_FACE_SAME_PERSON_DISTANCE);
    CHECK(other > DC_FACE_SAME_PERSON_DISTANCE);
    CHECK(other_wide > DC_FACE_SAME_PERSON_DISTANCE);
    CHECK(diff_a < 1e-5);
    CHECK(diff_h < 1e-5);
}
