/* wsinspect._speedups: optional C versions of the two per-byte loops of a recording relay.

   wsinspect works without this module (the same results, slower); tests hold both paths equal.

   unmask(data, key, offset=0) -> bytes
       wire.frames.mask at memory speed: XOR with the 4-byte masking key (RFC 6455 §5.3).

   b64encode(data) -> bytes
       binascii.b2a_base64(data, newline=False), three bytes at a time instead of bit by bit
       (the base64 of big binary payloads is most of a recording's CPU time). From 64 KiB on
       it releases the GIL: the recorder's writer thread encodes while the relay runs.

   scan_lines(data, pos, client, limit, conn, direction, ts, seq, message_no)
       -> (pos, seq, message_no, lines | None)
       The inspector's fast path and the recorder's line builder in one pass, for the common
       frame of a busy connection: a complete, unfragmented text or binary frame with no RSV
       bits, the right mask bit for its direction (§5.1), a minimal length (§5.2), at most
       ``limit`` bytes, and for text valid UTF-8 (§8.1). From ``pos`` on, each such frame becomes
       its recording line, its one-frame message on it (format v2, byte for byte what
       ``dumps(format_v2.line_dict(frame, message))`` writes for them); the scan stops at the first frame that is
       anything else or not complete in ``data``, and returns where it stopped, the last
       sequence and message numbers used and the lines (None when there were none). Whatever
       follows goes through the Python inspector, which reports violations, fragments, control
       frames and everything else. Nothing here raises on bad input: a frame it does not like
       simply ends the scan.

   Reached only through the shim wsinspect/speedups.py, which has a pure-Python version of each.
   No static mutable state: the buffers kept between calls live in the module object (PEP 489
   multi-phase initialisation, PyModule_GetState), so each interpreter has its own. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* --- a growable output buffer, kept between calls (the GIL serialises them) ------------- */

typedef struct {
    char *p;
    Py_ssize_t len, cap;
} Buf;

/* The module's state (PEP 489 multi-phase init, one per module object, so per interpreter):
   the output buffers kept between calls and the base64 pair table. */
typedef struct {
    Buf out, scratch;
    char b64_pairs[4096][2]; /* two base64 characters for every 12-bit value */
} State;

static inline State *get_state(PyObject *module) {
    return (State *)PyModule_GetState(module);
}

#define KEEP_MAX (4 << 20) /* a buffer that grew past this is given back after the call */

static int buf_reserve(Buf *b, Py_ssize_t need) {
    if (need <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 64 * 1024;
    while (cap < need) {
        if (cap > PY_SSIZE_T_MAX / 2) { PyErr_NoMemory(); return -1; }
        cap *= 2;
    }
    char *p = PyMem_Realloc(b->p, (size_t)cap);
    if (p == NULL) { PyErr_NoMemory(); return -1; }
    b->p = p;
    b->cap = cap;
    return 0;
}

static void buf_trim(Buf *b) {
    b->len = 0;
    if (b->cap > KEEP_MAX) {
        PyMem_Free(b->p);
        b->p = NULL;
        b->cap = 0;
    }
}

/* --- byte loops ----------------------------------------------------------------------- */

static void xor_mask(const uint8_t *src, uint8_t *dst, Py_ssize_t n, const uint8_t *key,
                     Py_ssize_t offset) {
    uint8_t k[8];
    for (int i = 0; i < 8; i++) k[i] = key[(offset + i) & 3];
    uint64_t k8;
    memcpy(&k8, k, 8);
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, src + i, 8);
        v ^= k8;
        memcpy(dst + i, &v, 8);
    }
    for (; i < n; i++) dst[i] = src[i] ^ k[i & 3];
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. */
static int utf8_valid(const uint8_t *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t v;
            memcpy(&v, s + i, 8);
            if (!(v & 0x8080808080808080ULL)) { i += 8; continue; }
        }
        uint8_t c = s[i];
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return 0;
            i += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (i + 2 >= n) return 0;
            uint8_t c1 = s[i + 1], c2 = s[i + 2];
            if ((c1 & 0xC0) != 0x80 || (c2 & 0xC0) != 0x80) return 0;
            if (c == 0xE0 && c1 < 0xA0) return 0; /* overlong */
            if (c == 0xED && c1 > 0x9F) return 0; /* UTF-16 surrogate */
            i += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (i + 3 >= n) return 0;
            uint8_t c1 = s[i + 1], c2 = s[i + 2], c3 = s[i + 3];
            if ((c1 & 0xC0) != 0x80 || (c2 & 0xC0) != 0x80 || (c3 & 0xC0) != 0x80) return 0;
            if (c == 0xF0 && c1 < 0x90) return 0; /* overlong */
            if (c == 0xF4 && c1 > 0x8F) return 0; /* above U+10FFFF */
            i += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

static const char HEX[] = "0123456789abcdef";
static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* A JSON string of valid UTF-8 text as json.dumps(ensure_ascii=False) writes it: only '"',
   '\\' and the C0 controls are escaped, the short forms where JSON has them. */
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
/* Whether any byte of the word is below 0x20, '"' or '\\' (exact: no byte is missed, none
   is wrongly found; bytes from 0x80 on, UTF-8 sequences, never count). */
static int needs_escape(uint64_t w) {
    uint64_t quote = w ^ (ONES * '"'), backslash = w ^ (ONES * '\\');
    uint64_t found = (w - ONES * 0x20) & ~w;
    found |= (quote - ONES) & ~quote;
    found |= (backslash - ONES) & ~backslash;
    return (found & HIGHS) != 0;
}

static char *put_text(char *o, const uint8_t *s, Py_ssize_t n) {
    *o++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i + 8 <= n) { /* eight plain bytes at once: most text has nothing to escape */
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!needs_escape(w)) {
                memcpy(o, &w, 8);
                o += 8;
                i += 7;
                continue;
            }
        }
        uint8_t c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\') { *o++ = (char)c; continue; }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default:
            memcpy(o, "u00", 3);
            o[3] = HEX[c >> 4];
            o[4] = HEX[c & 15];
            o += 5;
        }
    }
    *o++ = '"';
    return o;
}

/* Two base64 characters for every 12-bit value: half the lookups of one table of 64. */
static void init_b64_pairs(char (*pairs)[2]) {
    for (int v = 0; v < 4096; v++) {
        pairs[v][0] = B64[v >> 6];
        pairs[v][1] = B64[v & 63];
    }
}

/* A JSON string of the payload's standard base64 (RFC 4648 §4, padded), as binascii writes it;
   ``pairs`` is the module state's table. */
static char *put_base64(char *o, const uint8_t *s, Py_ssize_t n, const char (*pairs)[2]) {
    *o++ = '"';
    Py_ssize_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        memcpy(o, pairs[v >> 12], 2);
        memcpy(o + 2, pairs[v & 4095], 2);
        o += 4;
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        o[0] = B64[v >> 18];
        o[1] = B64[(v >> 12) & 63];
        o[2] = o[3] = '=';
        o += 4;
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        o[0] = B64[v >> 18];
        o[1] = B64[(v >> 12) & 63];
        o[2] = B64[(v >> 6) & 63];
        o[3] = '=';
        o += 4;
    }
    *o++ = '"';
    return o;
}

static char *put_hex(char *o, const uint8_t *s, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        *o++ = HEX[s[i] >> 4];
        *o++ = HEX[s[i] & 15];
    }
    return o;
}

static char *put_i64(char *o, long long v) {
    char tmp[24];
    int n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    if (v < 0) *o++ = '-';
    do { tmp[n++] = (char)('0' + u % 10); u /= 10; } while (u);
    while (n) *o++ = tmp[--n];
    return o;
}

static char *put_mem(char *o, const char *s, Py_ssize_t n) {
    memcpy(o, s, (size_t)n);
    return o + n;
}

#define PUT(o, lit) (memcpy((o), (lit), sizeof(lit) - 1), (o) + sizeof(lit) - 1)

/* --- module functions ----------------------------------------------------------------- */

static PyObject *unmask(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs < 2 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "unmask(data, key, offset=0)");
        return NULL;
    }
    Py_ssize_t offset = 0;
    if (nargs == 3) {
        offset = PyLong_AsSsize_t(args[2]);
        if (offset == -1 && PyErr_Occurred()) return NULL;
    }
    Py_buffer data, key;
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) return NULL;
    if (PyObject_GetBuffer(args[1], &key, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    PyObject *result = NULL;
    if (key.len != 4) {
        PyErr_SetString(PyExc_ValueError, "a masking key is 4 bytes");
    } else {
        result = PyBytes_FromStringAndSize(NULL, data.len);
        if (result != NULL)
            xor_mask(data.buf, (uint8_t *)PyBytes_AS_STRING(result), data.len, key.buf,
                     offset & 3);
    }
    PyBuffer_Release(&key);
    PyBuffer_Release(&data);
    return result;
}

#define B64_NOGIL (64 * 1024) /* from this size on, b64encode runs without the GIL */

static PyObject *b64encode(PyObject *self, PyObject *arg) {
    State *state = get_state(self);
    Py_buffer data;
    if (PyObject_GetBuffer(arg, &data, PyBUF_SIMPLE) < 0) return NULL;
    if (data.len > (PY_SSIZE_T_MAX - 2) / 4 * 3) {
        PyBuffer_Release(&data);
        return PyErr_NoMemory();
    }
    /* put_base64 writes the value between quotes: make room for them, then drop them. */
    Py_ssize_t n = 4 * ((data.len + 2) / 3);
    PyObject *result = PyBytes_FromStringAndSize(NULL, n + 2);
    if (result != NULL) {
        char *o = PyBytes_AS_STRING(result);
        const char (*pairs)[2] = (const char (*)[2])state->b64_pairs;
        if (data.len >= B64_NOGIL) {
            /* The recorder's writer thread encodes big payloads here, beside the relay: the
               buffer is held by ``data``, the result is ours alone, the table is read-only. */
            Py_BEGIN_ALLOW_THREADS
            put_base64(o, data.buf, data.len, pairs);
            memmove(o, o + 1, (size_t)n);
            Py_END_ALLOW_THREADS
        } else {
            put_base64(o, data.buf, data.len, pairs);
            memmove(o, o + 1, (size_t)n);
        }
        if (_PyBytes_Resize(&result, n) < 0) result = NULL;
    }
    PyBuffer_Release(&data);
    return result;
}

/* Bytes the line of one frame can take besides the payload and the timestamp. */
#define LINES_FIXED 320

static PyObject *scan_lines(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    State *state = get_state(self);
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError,
                        "scan_lines(data, pos, client, limit, conn, direction, ts, seq, "
                        "message_no)");
        return NULL;
    }
    if (!PyBytes_Check(args[0]) || !PyUnicode_Check(args[5])) {
        PyErr_SetString(PyExc_TypeError, "scan_lines: data must be bytes, direction str");
        return NULL;
    }
    const uint8_t *d = (const uint8_t *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t end = PyBytes_GET_SIZE(args[0]);
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    int client = PyObject_IsTrue(args[2]);
    Py_ssize_t limit = PyLong_AsSsize_t(args[3]);
    long long conn = PyLong_AsLongLong(args[4]);
    Py_ssize_t dir_len;
    const char *dir = PyUnicode_AsUTF8AndSize(args[5], &dir_len);
    double ts = PyFloat_AsDouble(args[6]);
    long long seq = PyLong_AsLongLong(args[7]);
    long long message_no = PyLong_AsLongLong(args[8]);
    if (PyErr_Occurred() || client < 0 || dir == NULL) return NULL;
    if (pos < 0 || limit < 0) {
        PyErr_SetString(PyExc_ValueError, "scan_lines: pos and limit must not be negative");
        return NULL;
    }
    /* The timestamp as repr(float) writes it (and so json.dumps). */
    char *ts_text = PyOS_double_to_string(ts, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (ts_text == NULL) return NULL;
    Py_ssize_t ts_len = (Py_ssize_t)strlen(ts_text);

    Buf *out = &state->out;
    Buf *scratch = &state->scratch;
    out->len = 0;
    int failed = 0;
    while (end - pos >= 2) {
        const uint8_t *h = d + pos;
        Py_ssize_t avail = end - pos;
        uint8_t b0 = h[0], b1 = h[1];
        if (b0 != 0x81 && b0 != 0x82) break; /* FIN, no RSV, text or binary */
        if (((b1 & 0x80) != 0) != client) break;
        uint64_t length = b1 & 0x7F;
        Py_ssize_t hlen = 2;
        if (length == 126) {
            hlen = 4;
            if (avail < hlen) break;
            length = (uint64_t)h[2] << 8 | h[3];
            if (length < 126) break; /* not minimal */
        } else if (length == 127) {
            hlen = 10;
            if (avail < hlen) break;
            length = 0;
            for (int i = 2; i < 10; i++) length = length << 8 | h[i];
            if (length < 65536) break; /* not minimal, or the top bit set */
        }
        if (client) hlen += 4;
        if (avail < hlen || length > (uint64_t)limit || length > (uint64_t)(avail - hlen)) break;
        Py_ssize_t n = (Py_ssize_t)length;
        const uint8_t *payload = h + hlen;
        if (client && n) {
            if (buf_reserve(scratch, n) < 0) { failed = 1; break; }
            xor_mask(payload, (uint8_t *)scratch->p, n, h + hlen - 4, 0);
            payload = (const uint8_t *)scratch->p;
        }
        int text = b0 == 0x81;
        if (text && !utf8_valid(payload, n)) break;
        Py_ssize_t value_max = text ? 6 * n + 2 : 4 * ((n + 2) / 3) + 2;
        if (buf_reserve(out, out->len + LINES_FIXED + ts_len + dir_len + value_max) < 0) {
            failed = 1;
            break;
        }
        seq++;
        message_no++;
        char *o = out->p + out->len;
        o = PUT(o, "{\"type\":\"frame\",\"conn\":");
        o = put_i64(o, conn);
        o = PUT(o, ",\"seq\":");
        o = put_i64(o, seq);
        o = PUT(o, ",\"dir\":\"");
        o = put_mem(o, dir, dir_len);
        o = PUT(o, "\",\"ts\":");
        o = put_mem(o, ts_text, ts_len);
        o = PUT(o, ",\"hdr\":\"");
        o = put_hex(o, h, hlen);
        if (text) {
            o = PUT(o, "\",\"text\":");
            o = put_text(o, payload, n);
        } else {
            o = PUT(o, "\",\"b64\":");
            o = put_base64(o, payload, n, (const char (*)[2])state->b64_pairs);
        }
        o = PUT(o, ",\"msg\":");
        o = put_i64(o, message_no);
        o = PUT(o, ",\"end\":{}}\n");
        out->len = o - out->p;
        pos += hlen + n;
    }
    PyMem_Free(ts_text);
    PyObject *lines = NULL;
    if (!failed) {
        if (out->len) {
            lines = PyBytes_FromStringAndSize(out->p, out->len);
        } else {
            lines = Py_None;
            Py_INCREF(lines);
        }
    }
    buf_trim(out);
    buf_trim(scratch);
    if (lines == NULL) return NULL;
    return Py_BuildValue("(nLLN)", pos, seq, message_no, lines);
}

static PyMethodDef methods[] = {
    {"unmask", (PyCFunction)(void (*)(void))unmask, METH_FASTCALL,
     "unmask(data, key, offset=0) -> bytes: XOR with the 4-byte masking key (RFC 6455 §5.3); "
     "offset is data[0]'s position in the payload."},
    {"b64encode", b64encode, METH_O,
     "b64encode(data) -> bytes: standard padded base64 (RFC 4648 §4), no newline; several "
     "times faster than binascii for big payloads."},
    {"scan_lines", (PyCFunction)(void (*)(void))scan_lines, METH_FASTCALL,
     "scan_lines(data, pos, client, limit, conn, direction, ts, seq, message_no) -> "
     "(pos, seq, message_no, lines | None): recording lines for the common frames from pos on."},
    {NULL, NULL, 0, NULL},
};

/* --- module state and initialisation (PEP 489 multi-phase) ---------------------------- */

static int module_exec(PyObject *module) {
    State *state = get_state(module); /* zeroed by the interpreter: empty buffers */
    init_b64_pairs(state->b64_pairs);
    return 0;
}

static void module_free(void *module) {
    State *state = get_state((PyObject *)module);
    if (state == NULL) return; /* the state was never allocated */
    PyMem_Free(state->out.p);
    PyMem_Free(state->scratch.p);
    state->out = state->scratch = (Buf){NULL, 0, 0};
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, module_exec},
#ifdef Py_mod_multiple_interpreters
    /* All state is in the module object: each interpreter has its own. */
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_mod_gil
    /* The buffers kept between calls rely on the GIL to serialise the calls. */
    {Py_mod_gil, Py_MOD_GIL_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "wsinspect._speedups",
    .m_doc = "Optional C speed-ups: unmasking and recording lines for common frames.",
    .m_size = sizeof(State),
    .m_methods = methods,
    .m_slots = slots,
    .m_free = module_free,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    return PyModuleDef_Init(&module);
}
