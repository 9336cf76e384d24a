/*
 * gorillaws._speedups: optional C versions of the two byte loops that run on
 * every payload byte, masking (RFC 6455 section 5.3) and UTF-8 validation
 * (RFC 6455 section 8.1), and of the per-frame work of a message sent or
 * received as one frame (parse_frame, encode_frame).  The package never needs
 * this module: mask.py, utf8.py and frames.py fall back to pure Python when
 * it is missing or disabled with GORILLAWS_NO_SPEEDUPS=1.
 *
 * Plain CPython C API (3.9+), no third-party dependencies.  Inputs are read
 * through the buffer protocol, so bytes, bytearray, memoryview, array and
 * mmap all work.  The GIL is released around loops over large inputs.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <limits.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <emmintrin.h>
#define GWS_HAVE_SSE2 1
#endif

/* Inputs at least this long are processed with the GIL released. */
#define GWS_NOGIL_THRESHOLD (64 * 1024)

/* ------------------------------------------------------------------------
 * Argument parsing for METH_FASTCALL | METH_KEYWORDS functions.
 *
 * Fills out[0..nmax-1] (borrowed references, NULL when not given) from the
 * positional arguments and keywords, given the parameter names.  Returns 0 on
 * success, -1 with an exception set.
 */
static int
parse_args(const char *fname, const char *const *names, Py_ssize_t nreq, Py_ssize_t nmax,
           PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **out)
{
    Py_ssize_t i, j, nkw;

    if (nargs > nmax) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %zd arguments (%zd given)",
                     fname, nmax, nargs);
        return -1;
    }
    for (i = 0; i < nmax; i++) {
        out[i] = i < nargs ? args[i] : NULL;
    }
    nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (i = 0; i < nkw; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        for (j = 0; j < nmax; j++) {
            if (PyUnicode_CompareWithASCIIString(key, names[j]) == 0) {
                break;
            }
        }
        if (j == nmax) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'",
                         fname, key);
            return -1;
        }
        if (out[j] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'",
                         fname, names[j]);
            return -1;
        }
        out[j] = args[nargs + i];
    }
    for (i = 0; i < nreq; i++) {
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fname, names[i]);
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Masking.
 */

/* XOR n bytes of src with the key, starting at key position phase (0..3),
 * into dst.  src and dst may be the same buffer. */
static void
mask_bytes(const unsigned char *src, unsigned char *dst, Py_ssize_t n,
           const unsigned char *key, unsigned phase)
{
    unsigned char k16[16];
    uint64_t k64;
    Py_ssize_t i = 0;
    int j;

    /* k16[j] is the key byte for every position i with i % 4 == j % 4, once
     * the phase is folded in; every block below starts at a multiple of 4. */
    for (j = 0; j < 16; j++) {
        k16[j] = key[(phase + (unsigned)j) & 3u];
    }
#ifdef GWS_HAVE_SSE2
    {
        __m128i k = _mm_loadu_si128((const __m128i *)k16);
        for (; i + 64 <= n; i += 64) {
            __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
            __m128i b = _mm_loadu_si128((const __m128i *)(src + i + 16));
            __m128i c = _mm_loadu_si128((const __m128i *)(src + i + 32));
            __m128i d = _mm_loadu_si128((const __m128i *)(src + i + 48));
            _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(a, k));
            _mm_storeu_si128((__m128i *)(dst + i + 16), _mm_xor_si128(b, k));
            _mm_storeu_si128((__m128i *)(dst + i + 32), _mm_xor_si128(c, k));
            _mm_storeu_si128((__m128i *)(dst + i + 48), _mm_xor_si128(d, k));
        }
        for (; i + 16 <= n; i += 16) {
            __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
            _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(a, k));
        }
    }
#endif
    memcpy(&k64, k16, 8);
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= k64;
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++) {
        dst[i] = src[i] ^ k16[i & 3];
    }
}

/* mask_bytes with the GIL released for long inputs (other threads run while
 * a large payload is masked). */
static void
mask_bytes_long(const unsigned char *src, unsigned char *dst, Py_ssize_t n,
                const unsigned char *key, unsigned phase)
{
    if (n >= GWS_NOGIL_THRESHOLD) {
        Py_BEGIN_ALLOW_THREADS
        mask_bytes(src, dst, n, key, phase);
        Py_END_ALLOW_THREADS
    }
    else {
        mask_bytes(src, dst, n, key, phase);
    }
}

/* Reads the key position from an int (any size, negative allowed: only its
 * value modulo 4 matters, as in the pure-Python version). */
static int
get_phase(PyObject *obj, unsigned *phase)
{
    PyObject *index, *low;
    Py_ssize_t v;

    if (obj == NULL) {
        *phase = 0;
        return 0;
    }
    index = PyNumber_Index(obj);
    if (index == NULL) {
        return -1;
    }
    v = PyLong_AsSsize_t(index);
    if (v == -1 && PyErr_Occurred()) {
        /* Too big for Py_ssize_t: reduce it in Python ints first. */
        PyObject *three;
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
            Py_DECREF(index);
            return -1;
        }
        PyErr_Clear();
        three = PyLong_FromLong(3);
        if (three == NULL) {
            Py_DECREF(index);
            return -1;
        }
        low = PyNumber_And(index, three);
        Py_DECREF(three);
        if (low == NULL) {
            Py_DECREF(index);
            return -1;
        }
        v = PyLong_AsSsize_t(low);
        Py_DECREF(low);
    }
    Py_DECREF(index);
    *phase = (unsigned)((size_t)v & 3u);
    return 0;
}

/* Copies the 4-byte key obj (any buffer) into key.  Copied, because it may
 * live inside the buffer being masked (a memoryview of the frame header). */
static int
copy_key(PyObject *obj, unsigned char key[4])
{
    Py_buffer view;

    if (PyBytes_CheckExact(obj)) {
        if (PyBytes_GET_SIZE(obj) != 4) {
            goto bad_length;
        }
        memcpy(key, PyBytes_AS_STRING(obj), 4);
        return 0;
    }
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    if (view.len != 4) {
        PyBuffer_Release(&view);
        goto bad_length;
    }
    memcpy(key, view.buf, 4);
    PyBuffer_Release(&view);
    return 0;

bad_length:
    PyErr_SetString(PyExc_ValueError, "mask must be exactly 4 bytes");
    return -1;
}

static const char *const mask_arg_names[] = {"data", "mask", "offset"};

PyDoc_STRVAR(apply_mask_doc,
"apply_mask(data, mask, offset=0) -> bytes\n"
"\n"
"Return data XORed with the 4-byte mask, the first byte using key byte\n"
"offset % 4.  Masking twice with the same key and offset gives the data back.\n"
"data is any C-contiguous buffer.  Raises ValueError when mask is not 4 bytes\n"
"long, TypeError when data or mask is not a buffer.");

/* The arguments (data, mask, offset=0) of the two mask functions; *data is
 * the data argument. */
static int
mask_args(const char *fname, const char *const *names, PyObject *const *args, Py_ssize_t nargs,
          PyObject *kwnames, PyObject **data, unsigned char key[4], unsigned *phase)
{
    PyObject *argv[3];

    if (parse_args(fname, names, 2, 3, args, nargs, kwnames, argv) < 0) {
        return -1;
    }
    if (get_phase(argv[2], phase) < 0 || copy_key(argv[1], key) < 0) {
        return -1;
    }
    *data = argv[0];
    return 0;
}

static PyObject *
apply_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *obj;
    Py_buffer data;
    unsigned char key[4];
    unsigned phase;
    PyObject *result;

    (void)module;
    if (mask_args("apply_mask", mask_arg_names, args, nargs, kwnames, &obj, key, &phase) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(obj, &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result != NULL) {
        mask_bytes_long((const unsigned char *)data.buf, (unsigned char *)PyBytes_AS_STRING(result),
                        data.len, key, phase);
    }
    PyBuffer_Release(&data);
    return result;
}

PyDoc_STRVAR(apply_mask_into_doc,
"apply_mask_into(buf, mask, offset=0) -> None\n"
"\n"
"XOR the writable buffer buf (bytearray, writable memoryview, ...) with the\n"
"4-byte mask in place, the first byte using key byte offset % 4.  Raises\n"
"ValueError when mask is not 4 bytes long, TypeError when buf is not a\n"
"writable buffer, BufferError when it is not C-contiguous.");

static PyObject *
apply_mask_into(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"buf", "mask", "offset"};
    PyObject *obj;
    Py_buffer data;
    unsigned char keycopy[4];
    unsigned phase;

    (void)module;
    if (mask_args("apply_mask_into", names, args, nargs, kwnames, &obj, keycopy, &phase) < 0) {
        return NULL;
    }
    /* Ask for any contiguous buffer and check it is writable ourselves, so
     * that a read-only one raises TypeError, as the pure version does. */
    if (PyObject_GetBuffer(obj, &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (data.readonly) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_TypeError, "apply_mask_into needs a writable buffer");
        return NULL;
    }
    mask_bytes_long((unsigned char *)data.buf, (unsigned char *)data.buf, data.len, keycopy, phase);
    PyBuffer_Release(&data);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------
 * UTF-8 validation: a deterministic finite automaton over byte classes.
 *
 * Every byte value falls in one of 12 classes; the automaton has 9 states.
 * State 0 (ACCEPT) is "between characters", state 1 (REJECT) is a trap that
 * is entered at the first byte that cannot belong to valid UTF-8 whatever
 * follows.  The second-byte ranges of E0, ED, F0 and F4 are narrowed so that
 * overlong forms, UTF-16 surrogates (U+D800..U+DFFF) and code points above
 * U+10FFFF are refused at their second byte; C0, C1 and F5..FF are refused
 * at once.  (Table 3-7 of the Unicode Standard, chapter 3, lists the valid
 * byte sequences this encodes.)
 */

enum {
    C_ASCII = 0, /* 00..7F */
    C_CONT1,     /* 80..8F */
    C_CONT2,     /* 90..9F */
    C_CONT3,     /* A0..BF */
    C_LEAD2,     /* C2..DF */
    C_E0,        /* E0 */
    C_LEAD3,     /* E1..EC, EE, EF */
    C_ED,        /* ED */
    C_F0,        /* F0 */
    C_LEAD4,     /* F1..F3 */
    C_F4,        /* F4 */
    C_BAD,       /* C0, C1, F5..FF */
    N_CLASSES
};

enum {
    S_ACCEPT = 0, /* between characters */
    S_REJECT,     /* invalid; stays here */
    S_NEED1,      /* one continuation byte 80..BF to go */
    S_NEED2,      /* two continuation bytes to go */
    S_E0,         /* after E0: A0..BF, then one more */
    S_ED,         /* after ED: 80..9F, then one more */
    S_F0,         /* after F0: 90..BF, then two more */
    S_NEED3,      /* after F1..F3: three continuation bytes to go */
    S_F4,         /* after F4: 80..8F, then two more */
    N_STATES
};

#define R S_REJECT
static const unsigned char utf8_next[N_STATES][N_CLASSES] = {
    /*            ASCII     80-8F    90-9F    A0-BF    C2-DF    E0    E1-EF    ED    F0    F1-F3    F4    bad */
    [S_ACCEPT] = {S_ACCEPT, R,       R,       R,       S_NEED1, S_E0, S_NEED2, S_ED, S_F0, S_NEED3, S_F4, R},
    [S_REJECT] = {R,        R,       R,       R,       R,       R,    R,       R,    R,    R,       R,    R},
    [S_NEED1]  = {R,        S_ACCEPT, S_ACCEPT, S_ACCEPT, R,    R,    R,       R,    R,    R,       R,    R},
    [S_NEED2]  = {R,        S_NEED1, S_NEED1, S_NEED1, R,       R,    R,       R,    R,    R,       R,    R},
    [S_E0]     = {R,        R,       R,       S_NEED1, R,       R,    R,       R,    R,    R,       R,    R},
    [S_ED]     = {R,        S_NEED1, S_NEED1, R,       R,       R,    R,       R,    R,    R,       R,    R},
    [S_F0]     = {R,        R,       S_NEED2, S_NEED2, R,       R,    R,       R,    R,    R,       R,    R},
    [S_NEED3]  = {R,        S_NEED2, S_NEED2, S_NEED2, R,       R,    R,       R,    R,    R,       R,    R},
    [S_F4]     = {R,        S_NEED2, R,       R,       R,       R,    R,       R,    R,    R,       R,    R},
};
#undef R

/* The tables above are what the automaton means; the loop runs a faster
 * layout of the same thing built from them at import.  Each state k is
 * represented by the number 6*k, and utf8_row[b] packs, for every state k,
 * the representation of the next state after byte b into bits 6k..6k+5.  One
 * step is then utf8_row[b] >> state & 63: the table load depends only on the
 * byte, so just a shift and an AND lie on the chain from byte to byte. */
#define STATE_BITS 6
#define REP(s) ((unsigned)(s) * STATE_BITS)

static uint64_t utf8_row[256];

static void
init_utf8_tables(void)
{
    int b, k;
    for (b = 0; b < 256; b++) {
        unsigned char c;
        uint64_t row = 0;
        if (b < 0x80) c = C_ASCII;
        else if (b < 0x90) c = C_CONT1;
        else if (b < 0xA0) c = C_CONT2;
        else if (b < 0xC0) c = C_CONT3;
        else if (b < 0xC2) c = C_BAD;
        else if (b < 0xE0) c = C_LEAD2;
        else if (b == 0xE0) c = C_E0;
        else if (b == 0xED) c = C_ED;
        else if (b < 0xF0) c = C_LEAD3;
        else if (b == 0xF0) c = C_F0;
        else if (b < 0xF4) c = C_LEAD4;
        else if (b == 0xF4) c = C_F4;
        else c = C_BAD;
        for (k = 0; k < N_STATES; k++) {
            row |= (uint64_t)REP(utf8_next[k][c]) << REP(k);
        }
        utf8_row[b] = row;
    }
}

#define HIGH_BITS UINT64_C(0x8080808080808080)
#define STEP(state, byte) ((unsigned)(utf8_row[(byte)] >> (state)) & 63u)

/* Runs the automaton over n bytes from state (in the 6*k representation) and
 * returns the final state.  REJECT is a trap, so checking for it once per
 * 16-byte block and stopping there gives the same answer as per byte. */
static unsigned
utf8_run(const unsigned char *p, Py_ssize_t n, unsigned state)
{
    Py_ssize_t i = 0;

    while (i + 16 <= n) {
        if (state == REP(S_ACCEPT)) {
            /* Between characters: skip pure-ASCII blocks a word at a time. */
            uint64_t a, b, c, d;
            for (; i + 32 <= n; i += 32) {
                memcpy(&a, p + i, 8);
                memcpy(&b, p + i + 8, 8);
                memcpy(&c, p + i + 16, 8);
                memcpy(&d, p + i + 24, 8);
                if ((a | b | c | d) & HIGH_BITS) {
                    break;
                }
            }
            if (i + 16 > n) {
                break;
            }
            memcpy(&a, p + i, 8);
            memcpy(&b, p + i + 8, 8);
            if (!((a | b) & HIGH_BITS)) {
                i += 16;
                continue;
            }
        }
        state = STEP(state, p[i]);
        state = STEP(state, p[i + 1]);
        state = STEP(state, p[i + 2]);
        state = STEP(state, p[i + 3]);
        state = STEP(state, p[i + 4]);
        state = STEP(state, p[i + 5]);
        state = STEP(state, p[i + 6]);
        state = STEP(state, p[i + 7]);
        state = STEP(state, p[i + 8]);
        state = STEP(state, p[i + 9]);
        state = STEP(state, p[i + 10]);
        state = STEP(state, p[i + 11]);
        state = STEP(state, p[i + 12]);
        state = STEP(state, p[i + 13]);
        state = STEP(state, p[i + 14]);
        state = STEP(state, p[i + 15]);
        if (state == REP(S_REJECT)) {
            return state;
        }
        i += 16;
    }
    for (; i < n; i++) {
        state = STEP(state, p[i]);
    }
    return state;
}

PyDoc_STRVAR(utf8_validate_doc,
"utf8_validate(data, state) -> int\n"
"\n"
"Feed the bytes of data to the UTF-8 automaton starting in state and return\n"
"the new state: UTF8_ACCEPT (0) when data ends between characters,\n"
"UTF8_REJECT (1) as soon as a byte can never be part of valid UTF-8\n"
"(overlong forms, surrogates and code points above U+10FFFF included), any\n"
"other value when a character is still incomplete.  Start a message with\n"
"UTF8_ACCEPT; it is valid when the state after its last byte is UTF8_ACCEPT.\n"
"Raises ValueError for a state that is not one this function returns.");

static PyObject *
utf8_validate(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"data", "state"};
    PyObject *argv[2];
    Py_buffer data;
    long state;
    unsigned result;

    (void)module;
    if (parse_args("utf8_validate", names, 2, 2, args, nargs, kwnames, argv) < 0) {
        return NULL;
    }
    state = PyLong_AsLong(argv[1]);
    if (state == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (state < 0 || state >= N_STATES) {
        PyErr_Format(PyExc_ValueError, "invalid UTF-8 validator state %ld", state);
        return NULL;
    }
    if (state == S_REJECT) {
        return PyLong_FromLong(S_REJECT);
    }
    if (PyObject_GetBuffer(argv[0], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (data.len >= GWS_NOGIL_THRESHOLD) {
        Py_BEGIN_ALLOW_THREADS
        result = utf8_run((const unsigned char *)data.buf, data.len, REP(state));
        Py_END_ALLOW_THREADS
    }
    else {
        result = utf8_run((const unsigned char *)data.buf, data.len, REP(state));
    }
    PyBuffer_Release(&data);
    return PyLong_FromLong((long)(result / STATE_BITS));
}

/* ------------------------------------------------------------------------
 * Frames (RFC 6455 section 5.2): the fast path of one whole data message.
 *
 * parse_frame only ever accepts; it never decides an error.  Anything it does
 * not take (an incomplete header, a control frame, a fragment, RSV bits, a
 * masking mistake for the role, a non-minimal or oversize length, text that
 * is not UTF-8) comes back as None, and the caller's general Python path
 * parses the same bytes again and raises exactly as it always has.
 */

PyDoc_STRVAR(parse_frame_doc,
"parse_frame(buf, pos, end, is_server, limit) -> None | int | (opcode, payload, size)\n"
"\n"
"Look at the frame starting at buf[pos:end] for the fast path of a whole\n"
"message in one frame.  Returns (opcode, payload, size) when those bytes\n"
"hold a complete final text or binary frame with no RSV bits, masked as the\n"
"role requires (is_server: the peer is a client and must mask), whose\n"
"length is minimally encoded and at most limit (limit <= 0: no limit), and,\n"
"for text, whose payload is valid UTF-8: payload is the unmasked bytes,\n"
"size the frame's length on the wire.  Returns the frame's size as an int\n"
"when such a binary frame's header is complete but its payload is not all\n"
"there yet.  Returns None for anything else, which the caller reads the\n"
"general way (that path raises for malformed frames; this one never does).\n"
"Raises TypeError when buf is not a buffer, ValueError when pos and end do\n"
"not lie within it.");

/* Copies n payload bytes to dst, unmasking with key unless it is NULL; with
 * text set, returns whether they are not complete, valid UTF-8.  Called with
 * the GIL held; releases it for long inputs. */
static int
unmask_and_check(const unsigned char *src, unsigned char *dst, Py_ssize_t n,
                 const unsigned char *key, int text)
{
    int bad = 0;
    PyThreadState *released = n >= GWS_NOGIL_THRESHOLD ? PyEval_SaveThread() : NULL;

    if (key != NULL) {
        mask_bytes(src, dst, n, key, 0);
    }
    else {
        memcpy(dst, src, (size_t)n);
    }
    if (text) {
        bad = utf8_run(dst, n, REP(S_ACCEPT)) != REP(S_ACCEPT);
    }
    if (released != NULL) {
        PyEval_RestoreThread(released);
    }
    return bad;
}

static PyObject *
parse_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    const unsigned char *p;
    Py_ssize_t pos, end, avail, hs, total;
    uint64_t ln;
    int is_server, masked, opcode;
    unsigned char b0, b1;
    PyObject *payload, *result = NULL;

    (void)module;
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "parse_frame() takes 5 arguments (%zd given)", nargs);
        return NULL;
    }
    pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred()) {
        return NULL;
    }
    end = PyLong_AsSsize_t(args[2]);
    if (end == -1 && PyErr_Occurred()) {
        return NULL;
    }
    is_server = PyObject_IsTrue(args[3]);
    if (is_server < 0) {
        return NULL;
    }
    {
        int overflow;
        long long limit = PyLong_AsLongLongAndOverflow(args[4], &overflow);
        if (limit == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (overflow != 0) {
            /* Beyond 64 bits: no frame can exceed it (or, negative, no limit). */
            limit = overflow > 0 ? LLONG_MAX : -1;
        }
        if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
            return NULL;
        }
        if (pos < 0 || end < pos || end > view.len) {
            PyBuffer_Release(&view);
            PyErr_SetString(PyExc_ValueError, "parse_frame: pos and end must lie within buf");
            return NULL;
        }
        p = (const unsigned char *)view.buf + pos;
        avail = end - pos;
        if (avail < 2) {
            goto take_general_path;
        }
        b0 = p[0];
        b1 = p[1];
        opcode = b0 & 0x0F;
        /* FIN set, no RSV bits, text or binary. */
        if ((b0 & 0xF0) != 0x80 || (opcode != 1 && opcode != 2)) {
            goto take_general_path;
        }
        masked = (b1 & 0x80) != 0;
        if (masked != is_server) {
            goto take_general_path;
        }
        ln = b1 & 0x7F;
        hs = 2;
        if (ln == 126) {
            if (avail < 4) {
                goto take_general_path;
            }
            ln = ((uint64_t)p[2] << 8) | p[3];
            if (ln < 126) {
                goto take_general_path;
            }
            hs = 4;
        }
        else if (ln == 127) {
            int i;
            if (avail < 10) {
                goto take_general_path;
            }
            ln = 0;
            for (i = 2; i < 10; i++) {
                ln = (ln << 8) | p[i];
            }
            if ((ln >> 63) != 0 || ln <= 0xFFFF) {
                goto take_general_path;
            }
            hs = 10;
        }
        if (masked) {
            hs += 4;
        }
        if (avail < hs) {
            goto take_general_path;
        }
        if (limit > 0 && ln > (unsigned long long)limit) {
            goto take_general_path;
        }
        if (ln > (uint64_t)(PY_SSIZE_T_MAX - hs)) {
            goto take_general_path;
        }
        total = hs + (Py_ssize_t)ln;
        if (avail < total) {
            /* Text is checked as it arrives on the general path (a bad byte
             * fails the read before the rest of the frame is there), so only
             * a binary frame is worth waiting for here. */
            if (opcode != 2) {
                goto take_general_path;
            }
            PyBuffer_Release(&view);
            return PyLong_FromSsize_t(total);
        }
        payload = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)ln);
        if (payload == NULL) {
            PyBuffer_Release(&view);
            return NULL;
        }
        if (unmask_and_check(p + hs, (unsigned char *)PyBytes_AS_STRING(payload), (Py_ssize_t)ln,
                             masked ? p + hs - 4 : NULL, opcode == 1)) {
            Py_DECREF(payload);
            goto take_general_path;
        }
        PyBuffer_Release(&view);
        /* Built by hand: Py_BuildValue's format parsing cost most of this
         * call for a small frame. */
        result = PyTuple_New(3);
        if (result == NULL) {
            Py_DECREF(payload);
            return NULL;
        }
        {
            PyObject *op_obj = PyLong_FromLong(opcode);
            PyObject *size_obj = PyLong_FromSsize_t(total);
            if (op_obj == NULL || size_obj == NULL) {
                Py_XDECREF(op_obj);
                Py_XDECREF(size_obj);
                Py_DECREF(payload);
                Py_DECREF(result);
                return NULL;
            }
            PyTuple_SET_ITEM(result, 0, op_obj);
            PyTuple_SET_ITEM(result, 1, payload);
            PyTuple_SET_ITEM(result, 2, size_obj);
        }
        return result;
    }

take_general_path:
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(encode_frame_doc,
"encode_frame(opcode, payload, fin, rsv, mask) -> bytes\n"
"\n"
"One whole frame in one new bytes object: the header (as\n"
"frames.encode_header builds it) followed by the payload, XORed with the\n"
"4-byte mask when mask is not None (clients must mask).  payload is any\n"
"C-contiguous buffer.  Raises ValueError when mask is not 4 bytes long or\n"
"the header's first byte (FIN | rsv | opcode) is not a byte, TypeError\n"
"when payload or mask is not a buffer.");

static PyObject *
encode_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data;
    const unsigned char *key = NULL;
    unsigned char keycopy[4];
    long opcode, rsv;
    int fin;
    Py_ssize_t n, hs;
    unsigned char *out;
    PyObject *result;

    (void)module;
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "encode_frame() takes 5 arguments (%zd given)", nargs);
        return NULL;
    }
    {
        int overflow_op, overflow_rsv;
        opcode = PyLong_AsLongAndOverflow(args[0], &overflow_op);
        if (opcode == -1 && PyErr_Occurred()) {
            return NULL;
        }
        rsv = PyLong_AsLongAndOverflow(args[3], &overflow_rsv);
        if (rsv == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (overflow_op != 0 || overflow_rsv != 0) {
            opcode = -1; /* reported below, as any other byte out of range */
        }
    }
    fin = PyObject_IsTrue(args[2]);
    if (fin < 0) {
        return NULL;
    }
    /* The mask first, then the header byte: the pure twin's order. */
    if (args[4] != Py_None) {
        if (copy_key(args[4], keycopy) < 0) {
            return NULL;
        }
        key = keycopy;
    }
    {
        long b0 = (fin ? 0x80 : 0) | rsv | opcode;
        if (opcode < 0 || rsv < 0 || b0 > 255) {
            PyErr_SetString(PyExc_ValueError, "frame header byte out of range");
            return NULL;
        }
        opcode = b0;
    }
    if (PyObject_GetBuffer(args[1], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    n = data.len;
    hs = (n < 126 ? 2 : n <= 0xFFFF ? 4 : 10) + (key != NULL ? 4 : 0);
    result = PyBytes_FromStringAndSize(NULL, hs + n);
    if (result == NULL) {
        PyBuffer_Release(&data);
        return NULL;
    }
    out = (unsigned char *)PyBytes_AS_STRING(result);
    out[0] = (unsigned char)opcode;
    {
        unsigned char m = key != NULL ? 0x80 : 0;
        if (n < 126) {
            out[1] = (unsigned char)(m | (unsigned char)n);
        }
        else if (n <= 0xFFFF) {
            out[1] = (unsigned char)(m | 126);
            out[2] = (unsigned char)(n >> 8);
            out[3] = (unsigned char)n;
        }
        else {
            int i;
            uint64_t v = (uint64_t)n;
            out[1] = (unsigned char)(m | 127);
            for (i = 9; i >= 2; i--) {
                out[i] = (unsigned char)v;
                v >>= 8;
            }
        }
    }
    if (key != NULL) {
        memcpy(out + hs - 4, key, 4);
    }
    (void)unmask_and_check((const unsigned char *)data.buf, out + hs, n, key, 0);
    PyBuffer_Release(&data);
    return result;
}

/* ------------------------------------------------------------------------
 * Module.
 */

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL | METH_KEYWORDS,
     apply_mask_doc},
    {"apply_mask_into", (PyCFunction)(void (*)(void))apply_mask_into,
     METH_FASTCALL | METH_KEYWORDS, apply_mask_into_doc},
    {"utf8_validate", (PyCFunction)(void (*)(void))utf8_validate, METH_FASTCALL | METH_KEYWORDS,
     utf8_validate_doc},
    {"parse_frame", (PyCFunction)(void (*)(void))parse_frame, METH_FASTCALL, parse_frame_doc},
    {"encode_frame", (PyCFunction)(void (*)(void))encode_frame, METH_FASTCALL, encode_frame_doc},
    {NULL, NULL, 0, NULL},
};

static int
speedups_exec(PyObject *module)
{
    if (PyModule_AddIntConstant(module, "UTF8_ACCEPT", S_ACCEPT) < 0) {
        return -1;
    }
    if (PyModule_AddIntConstant(module, "UTF8_REJECT", S_REJECT) < 0) {
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot speedups_slots[] = {
    {Py_mod_exec, (void *)speedups_exec},
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

PyDoc_STRVAR(speedups_doc,
"C speedups for gorillaws: payload masking, incremental UTF-8 validation,\n"
"and the fast path of one-frame messages (parse_frame, encode_frame).\n"
"Optional; gorillaws.mask, gorillaws.utf8 and gorillaws.frames fall back to\n"
"pure Python.");

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "gorillaws._speedups",
    speedups_doc,
    0,
    speedups_methods,
    speedups_slots,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    init_utf8_tables();
    return PyModuleDef_Init(&speedups_module);
}
