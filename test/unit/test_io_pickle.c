/* The restricted unpickler on pickles written here opcode by opcode: the object tree, the
 * tensor rebuild calls, refused globals, and hostile input (nesting, memo, sizes, garbage). */
#include <math.h>
#include <string.h>

#include "harness.h"
#include "io/limits.h"
#include "io/pickle.h"
#include "io_fixtures.h"

enum { HOSTILE_MEMORY = 256u << 20 };

static int load(const io_buffer *b, int script, io_pickle *pk, io_pk_obj **result)
{
    io_pickle_init(pk, "model.pt", script);
    size_t consumed;
    return io_pickle_load(pk, b->data, b->size, &consumed, result);
}

static void binfloat(io_buffer *b, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    pk_op(b, 'G');
    for (int i = 7; i >= 0; i--)
        pk_op(b, (uint8_t)(bits >> (8 * i)));
}

/* {'i': 5, 'neg': -7, 'big': 2**40, 'f': 1.5, 's': 'hé', 'b': b'\x00\x01', 't': True,
 *  'n': None, 'l': [1, 2, 3], 'pair': (1, 'x'), 'od': OrderedDict()} in protocol 2. */
static void sample_protocol2(io_buffer *b)
{
    pk_lit(b, "\x80\x02}q\x00(");
    pk_str(b, "i"), pk_lit(b, "K\x05");
    pk_str(b, "neg"), pk_int(b, -7);
    pk_str(b, "big"), pk_int(b, (int64_t)1 << 40);
    pk_str(b, "f"), binfloat(b, 1.5);
    pk_str(b, "s"), pk_lit(b, "\x8c\x03h\xc3\xa9");
    pk_str(b, "b"), pk_lit(b, "C\x02\x00\x01");
    pk_str(b, "t"), pk_op(b, 0x88);
    pk_str(b, "n"), pk_op(b, 'N');
    pk_str(b, "l"), pk_lit(b, "]q\x01(K\x01K\x02K\x03" "e");
    pk_str(b, "pair"), pk_lit(b, "K\x01"), pk_str(b, "x"), pk_op(b, 0x86);
    pk_str(b, "od"), pk_global(b, "collections", "OrderedDict"), pk_lit(b, ")R");
    pk_lit(b, "u.");
}

TEST(protocol2_values_build_the_tree)
{
    io_buffer b = {0};
    sample_protocol2(&b);
    io_pickle pk;
    io_pk_obj *top;
    CHECK_OK(load(&b, 0, &pk, &top));
    CHECK(top->kind == IO_PK_DICT && top->u.dict.count == 11);
    CHECK(io_pk_dict_get(top, "i")->u.integer == 5);
    CHECK(io_pk_dict_get(top, "neg")->u.integer == -7);
    CHECK(io_pk_dict_get(top, "big")->u.integer == (int64_t)1 << 40);
    CHECK(io_pk_dict_get(top, "f")->u.real == 1.5);
    CHECK(strcmp(io_pk_string(io_pk_dict_get(top, "s")), "h\xc3\xa9") == 0);
    const io_pk_obj *bytes = io_pk_dict_get(top, "b");
    CHECK(bytes->kind == IO_PK_BYTES && bytes->u.text.length == 2 && bytes->u.text.data[1] == 1);
    CHECK(io_pk_dict_get(top, "t")->kind == IO_PK_BOOL && io_pk_dict_get(top, "t")->u.integer);
    CHECK(io_pk_dict_get(top, "n")->kind == IO_PK_NONE);
    const io_pk_obj *list = io_pk_dict_get(top, "l");
    CHECK(list->kind == IO_PK_LIST && list->u.seq.count == 3 && list->u.seq.items[2]->u.integer == 3);
    const io_pk_obj *pair = io_pk_dict_get(top, "pair");
    CHECK(pair->kind == IO_PK_TUPLE && strcmp(io_pk_string(pair->u.seq.items[1]), "x") == 0);
    CHECK(io_pk_dict_get(top, "od")->kind == IO_PK_DICT);
    io_pickle_free(&pk);
    io_buffer_free(&b);
}

TEST(protocol0_text_opcodes_and_memo)
{
    io_buffer b = {0};
    pk_lit(&b, "(lp0\nI1\naI01\naL12345678901L\naF2.5\na(I7\nI-8\ntp1\nag1\na.");
    io_pickle pk;
    io_pk_obj *top;
    CHECK_OK(load(&b, 0, &pk, &top));
    CHECK(top->kind == IO_PK_LIST && top->u.seq.count == 6);
    io_pk_obj **items = top->u.seq.items;
    CHECK(items[0]->kind == IO_PK_INT && items[0]->u.integer == 1);
    CHECK(items[1]->kind == IO_PK_BOOL && items[1]->u.integer == 1);
    CHECK(items[2]->u.integer == 12345678901ll);
    CHECK(items[3]->u.real == 2.5);
    CHECK(items[4]->kind == IO_PK_TUPLE && items[4]->u.seq.items[1]->u.integer == -8);
    CHECK(items[5] == items[4]);  /* the memo shares objects */
    io_pickle_free(&pk);
    io_buffer_free(&b);
}

TEST(protocol4_frames_memoize_and_stack_global)
{
    io_buffer body = {0}, b = {0};
    pk_lit(&body, "\x8c\x0b" "collections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94");
    pk_lit(&body, "\x8c\x01k\x94K\x01sh\x04.");
    pk_lit(&b, "\x80\x04\x95");
    fx_le64(&b, body.size);
    io_buffer_append(&b, body.data, body.size);
    io_pickle pk;
    io_pk_obj *top;
    CHECK_OK(load(&b, 0, &pk, &top));
    CHECK(top->kind == IO_PK_STRING && strcmp(top->u.text.data, "k") == 0);
    io_pickle_free(&pk);
    io_buffer_free(&body);
    io_buffer_free(&b);
}

TEST(pickles_follow_each_other)
{
    io_buffer b = {0};
    pk_lit(&b, "\x80\x02K\x07.\x80\x02N.");
    io_pickle pk;
    io_pickle_init(&pk, "two.pkl", 0);
    io_pk_obj *first, *second;
    size_t consumed;
    CHECK_OK(io_pickle_load(&pk, b.data, b.size, &consumed, &first));
    CHECK(consumed == 5 && first->u.integer == 7);
    CHECK_OK(io_pickle_load(&pk, b.data + consumed, b.size - consumed, &consumed, &second));
    CHECK(consumed == 4 && second->kind == IO_PK_NONE);
    io_pickle_free(&pk);
    io_buffer_free(&b);
}

TEST(tensor_rebuild_records_the_view)
{
    io_buffer b = {0};
    int64_t shape[] = {2, 3}, stride[] = {1, 2};
    pk_lit(&b, "\x80\x02");
    pk_tensor(&b, "HalfStorage", "7", 10, 4, 2, shape, stride);
    pk_op(&b, '.');
    io_pickle pk;
    io_pk_obj *t;
    CHECK_OK(load(&b, 0, &pk, &t));
    CHECK(t->kind == IO_PK_TENSOR && t->u.tensor.ndim == 2 && t->u.tensor.offset == 4);
    CHECK(t->u.tensor.shape[1] == 3 && t->u.tensor.stride[1] == 2);
    const io_pk_storage *s = &t->u.tensor.storage->u.storage;
    CHECK(s->dtype == DC_FLOAT16 && strcmp(s->key, "7") == 0 && s->numel == 10);
    CHECK(pk.storage_count == 1 && pk.storages[0] == t->u.tensor.storage);
    io_pickle_free(&pk);
    io_buffer_free(&b);
}

TEST(parameters_and_legacy_storage_views)
{
    /* _rebuild_parameter(_rebuild_tensor(storage view, 0, (4,), (1,)), True, OrderedDict())
     * with the legacy persistent id ('storage', torch.cuda.LongStorage, 'root', 'cuda:0', 10,
     * ('view', 3, 5)). */
    io_buffer b = {0};
    pk_lit(&b, "\x80\x02");
    pk_global(&b, "torch._utils", "_rebuild_parameter");
    pk_global(&b, "torch._utils", "_rebuild_tensor");
    pk_lit(&b, "((");
    pk_str(&b, "storage");
    pk_global(&b, "torch.cuda", "LongStorage");
    pk_str(&b, "root");
    pk_str(&b, "cuda:0");
    pk_int(&b, 10);
    pk_str(&b, "view");
    pk_int(&b, 3);
    pk_int(&b, 5);
    pk_lit(&b, "\x87tQK\x00(K\x04t(K\x01ttR\x88");
    pk_global(&b, "collections", "OrderedDict");
    pk_lit(&b, ")R\x87R.");
    io_pickle pk;
    io_pk_obj *t;
    CHECK_OK(load(&b, 0, &pk, &t));
    CHECK(t->kind == IO_PK_TENSOR && t->u.tensor.shape[0] == 4);
    const io_pk_storage *s = &t->u.tensor.storage->u.storage;
    CHECK(s->dtype == DC_INT64 && s->root_numel == 10 && s->root_offset == 3 && s->numel == 5);
    io_pickle_free(&pk);
    io_buffer_free(&b);

    /* A view past the end of its root storage. */
    pk_lit(&b, "\x80\x02((");
    pk_str(&b, "storage");
    pk_global(&b, "torch", "FloatStorage");
    pk_str(&b, "root");
    pk_str(&b, "cpu");
    pk_int(&b, 10);
    pk_str(&b, "view");
    pk_int(&b, 8);
    pk_int(&b, 5);
    pk_lit(&b, "\x87tQ.");
    CHECK_STATUS(load(&b, 0, &pk, &t), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "storage view out of range") != NULL);
    io_pickle_free(&pk);
    io_buffer_free(&b);
}

TEST(rebuild_from_type_v2_gives_the_tensor)
{
    io_buffer b = {0};
    int64_t shape[] = {3}, stride[] = {1};
    pk_lit(&b, "\x80\x02");
    pk_global(&b, "torch._tensor", "_rebuild_from_type_v2");
    pk_op(&b, '(');
    pk_global(&b, "torch._utils", "_rebuild_tensor_v2");
    pk_global(&b, "torch.nn.parameter", "Parameter");
    pk_op(&b, '(');
    pk_op(&b, '(');
    pk_str(&b, "storage");
    pk_global(&b, "torch", "BFloat16Storage");
    pk_str(&b, "0");
    pk_str(&b, "cpu");
    pk_int(&b, 3);
    pk_lit(&b, "tQK\x00");
    pk_int_tuple(&b, shape, 1);
    pk_int_tuple(&b, stride, 1);
    pk_op(&b, 0x89);
    pk_global(&b, "collections", "OrderedDict");
    pk_lit(&b, ")Rt}tR.");
    io_pickle pk;
    io_pk_obj *t;
    CHECK_OK(load(&b, 0, &pk, &t));
    CHECK(t->kind == IO_PK_TENSOR && t->u.tensor.storage->u.storage.dtype == DC_BFLOAT16);
    io_pickle_free(&pk);
    io_buffer_free(&b);
}

static void check_refused(const char *module, const char *name, const char *message, int stack)
{
    io_buffer b = {0};
    pk_lit(&b, "\x80\x04");
    if (stack) {
        pk_str(&b, module);
        pk_str(&b, name);
        pk_op(&b, 0x93);
    } else {
        pk_global(&b, module, name);
    }
    pk_lit(&b, "X\x02\x00\x00\x00ls\x85R.");
    io_pickle pk;
    io_pk_obj *top;
    int status = load(&b, 0, &pk, &top);
    io_pickle_free(&pk);
    io_buffer_free(&b);
    CHECK_STATUS(status, DC_EFORMAT);
    CHECKF(strcmp(dc_last_error(), message) == 0, "%s", dc_last_error());
}

TEST(globals_outside_the_allow_list_are_refused)
{
    check_refused("posix", "system", "model.pt: refused pickle global posix.system", 0);
    if (test_failed())
        return;
    check_refused("builtins", "eval", "model.pt: refused pickle global builtins.eval", 1);
    if (test_failed())
        return;
    check_refused("torch.storage", "_load_from_bytes",
                  "model.pt: refused pickle global torch.storage._load_from_bytes", 0);
    if (test_failed())
        return;
    check_refused("__builtin__", "getattr", "model.pt: refused pickle global __builtin__.getattr", 0);
    if (test_failed())
        return;
    check_refused("__torch__.m", "Evil", "model.pt: refused pickle global __torch__.m.Evil", 0);
    if (test_failed())
        return;
    check_refused("torch", "ShortStorage", "model.pt: unsupported tensor type torch.ShortStorage", 0);
}

TEST(allowed_globals_that_are_not_functions_are_not_called)
{
    io_buffer b = {0};
    pk_lit(&b, "\x80\x02");
    pk_global(&b, "torch", "FloatStorage");
    pk_lit(&b, ")R.");
    io_pickle pk;
    io_pk_obj *top;
    CHECK_STATUS(load(&b, 0, &pk, &top), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "call of torch.FloatStorage is not supported") != NULL);
    io_pickle_free(&pk);
    io_buffer_free(&b);
    pk_lit(&b, "\x80\x02X\x01\x00\x00\x00x)R.");
    CHECK_STATUS(load(&b, 0, &pk, &top), DC_EFORMAT);
    io_pickle_free(&pk);
    io_buffer_free(&b);
}

TEST(script_classes_are_attribute_containers)
{
    io_buffer b = {0};
    pk_lit(&b, "\x80\x02");
    pk_global(&b, "__torch__.m", "Net");
    pk_lit(&b, ")\x81}(");
    pk_str(&b, "training");
    pk_lit(&b, "\x88ub.");
    io_pickle pk;
    io_pk_obj *top;
    CHECK_OK(load(&b, 1, &pk, &top));
    CHECK(top->kind == IO_PK_OBJECT);
    CHECK(strcmp(top->u.object.cls->u.global.name, "__torch__.m.Net") == 0);
    CHECK(io_pk_dict_get(top->u.object.state, "training")->kind == IO_PK_BOOL);
    io_pickle_free(&pk);
    CHECK_STATUS(load(&b, 0, &pk, &top), DC_EFORMAT);
    io_pickle_free(&pk);
    io_buffer_free(&b);
}

static int load_status(const io_buffer *b)
{
    io_pickle pk;
    io_pk_obj *top;
    int status = load(b, 0, &pk, &top);
    io_pickle_free(&pk);
    return status;
}

static void repeat(io_buffer *b, const char *bytes, int times)
{
    for (int i = 0; i < times; i++)
        io_buffer_append(b, bytes, strlen(bytes));
}

TEST(deep_nesting_is_refused)
{
    io_buffer b = {0};
    repeat(&b, "(", IO_MAX_PICKLE_DEPTH + 10);
    CHECK_STATUS(load_status(&b), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "marks nested deeper") != NULL);
    io_buffer_free(&b);

    repeat(&b, "]", IO_MAX_PICKLE_DEPTH + 10);
    repeat(&b, "a", IO_MAX_PICKLE_DEPTH + 9);
    pk_op(&b, '.');
    CHECK_STATUS(load_status(&b), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "nested deeper than") != NULL);
    io_buffer_free(&b);

    pk_op(&b, ')');
    repeat(&b, "\x85", IO_MAX_PICKLE_DEPTH + 10);
    pk_op(&b, '.');
    CHECK_STATUS(load_status(&b), DC_EFORMAT);
    io_buffer_free(&b);

    /* Nesting within the limit is fine; a list holding itself stops at the limit. */
    pk_op(&b, ')');
    repeat(&b, "\x85", IO_MAX_PICKLE_DEPTH - 10);
    pk_op(&b, '.');
    CHECK_OK(load_status(&b));
    io_buffer_free(&b);
    pk_lit(&b, "]q\x00");
    for (int i = 0; i < IO_MAX_PICKLE_DEPTH + 10; i++)
        pk_lit(&b, "h\x00" "a");
    pk_op(&b, '.');
    CHECK_STATUS(load_status(&b), DC_EFORMAT);
    io_buffer_free(&b);
}

TEST(memo_stack_and_size_abuse_is_refused)
{
    static const struct {
        const char *bytes;
        size_t size;
        const char *message;
    } cases[] = {
        {"N\x72\xff\xff\xff\xff.", 7, "over the limit"},          /* LONG_BINPUT 2^32-1 */
        {"h\x05.", 3, "memo key 5 missing"},                       /* BINGET unset */
        {"X\xf0\xff\xff\xff" "abc.", 9, "truncated"},                 /* BINUNICODE length */
        {"\x8d\xff\xff\xff\xff\xff\xff\xff\x3f" "abc.", 13, "truncated"},
        {"\x8b\xff\xff\xff\x7f" "abc.", 9, "truncated"},           /* LONG4 */
        {"\x95\xff\xff\xff\xff\xff\xff\x00\x00N.", 11, "truncated"}, /* FRAME */
        {".", 1, "stack underflow"},
        {"(.", 2, "stack underflow"},
        {"Na.", 3, "stack underflow"},
        {"K\x01u.", 4, "no mark"},
        {"]K\x01K\x02s.", 7, "item assignment to a list"},
        {"\x80\x06N.", 4, "unsupported pickle protocol"},
        {"i__main__\nX\n.", 13, "unsupported opcode"},
        {"N", 1, "truncated"},
    };
    CHECK(fx_limit_memory(HOSTILE_MEMORY) == 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        io_buffer b = {0};
        io_buffer_append(&b, cases[i].bytes, cases[i].size);
        int status = load_status(&b);
        io_buffer_free(&b);
        if (status != DC_EFORMAT || !strstr(dc_last_error(), cases[i].message)) {
            fx_unlimit_memory();
            CHECKF(0, "case %zu: status %d, '%s'", i, status, dc_last_error());
        }
    }
    fx_unlimit_memory();
}

/* A small state dict pickle: OrderedDict of two tensors sharing a storage. */
static void sample_state_dict(io_buffer *b)
{
    int64_t shape[] = {2, 2}, stride[] = {2, 1}, row[] = {2}, step[] = {1};
    pk_lit(b, "\x80\x02");
    pk_global(b, "collections", "OrderedDict");
    pk_lit(b, ")Rq\x00(");
    pk_str(b, "w");
    pk_tensor(b, "FloatStorage", "0", 6, 0, 2, shape, stride);
    pk_str(b, "b");
    pk_tensor(b, "FloatStorage", "0", 6, 4, 1, row, step);
    pk_lit(b, "u}bh\x00.");
}

/* Every hostile variant must give DC_OK or DC_EFORMAT naming the file, never DC_ENOMEM. */
static int hostile_ok(int status)
{
    return status == DC_OK ||
           (status == DC_EFORMAT && strncmp(dc_last_error(), "model.pt: ", 10) == 0);
}

TEST(truncations_flips_and_garbage_fail_cleanly)
{
    io_buffer b = {0};
    sample_state_dict(&b);
    CHECK_OK(load_status(&b));
    CHECK(fx_limit_memory(HOSTILE_MEMORY) == 0);
    for (size_t n = 0; n < b.size; n++) {
        io_buffer cut = {0};
        io_buffer_append(&cut, b.data, n);
        int status = load_status(&cut);
        io_buffer_free(&cut);
        if (status != DC_EFORMAT || !hostile_ok(status)) {
            fx_unlimit_memory();
            CHECKF(0, "truncated to %zu: status %d (%s)", n, status, dc_last_error());
        }
    }
    for (size_t i = 0; i < b.size; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b.data[i] ^= (uint8_t)(1u << bit);
            int status = load_status(&b);
            b.data[i] ^= (uint8_t)(1u << bit);
            if (!hostile_ok(status)) {
                fx_unlimit_memory();
                CHECKF(0, "flip at %zu: status %d (%s)", i, status, dc_last_error());
            }
        }
    }
    uint64_t state = 88172645463325252ull;
    for (int round = 0; round < 5000; round++) {
        io_buffer r = {0};
        if (round % 2)
            pk_lit(&r, "\x80\x02");
        size_t n = (size_t)(round % 200) + 1;
        for (size_t i = 0; i < n; i++) {
            state ^= state << 13, state ^= state >> 7, state ^= state << 17;
            io_buffer_byte(&r, (uint8_t)state);
        }
        int status = load_status(&r);
        io_buffer_free(&r);
        if (!hostile_ok(status)) {
            fx_unlimit_memory();
            CHECKF(0, "random round %d: status %d (%s)", round, status, dc_last_error());
        }
    }
    fx_unlimit_memory();
    io_buffer_free(&b);
}

TEST(bad_tensor_arguments_are_refused)
{
    int64_t shape[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, stride[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    int64_t negative[] = {-1};
    io_buffer b = {0};
    pk_lit(&b, "\x80\x02");
    pk_tensor(&b, "FloatStorage", "0", 1, 0, 9, shape, stride);
    pk_op(&b, '.');
    CHECK_STATUS(load_status(&b), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "at most 8 dimensions") != NULL);
    io_buffer_free(&b);
    pk_lit(&b, "\x80\x02");
    pk_tensor(&b, "FloatStorage", "0", 1, 0, 1, negative, stride);
    pk_op(&b, '.');
    CHECK_STATUS(load_status(&b), DC_EFORMAT);
    io_buffer_free(&b);
    pk_lit(&b, "\x80\x02");
    pk_tensor(&b, "FloatStorage", "0", 1, -3, 1, shape, stride);
    pk_op(&b, '.');
    CHECK_STATUS(load_status(&b), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "storage offset") != NULL);
    io_buffer_free(&b);
}
