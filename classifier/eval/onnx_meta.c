/* onnx_meta.c -- set one metadata_props entry of an ONNX file, keeping
 * every other byte: the top-level fields of the ModelProto are walked at
 * the protobuf wire level and copied verbatim; only the entry being set is
 * encoded anew (protobuf-c, onnx.proto's StringStringEntryProto).
 */
#define _GNU_SOURCE
#include "eval/eval.h"
#include "engine/onnx.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ModelProto.metadata_props and StringStringEntryProto.key (onnx.proto). */
#define MODEL_METADATA_PROPS 14
#define ENTRY_KEY 1

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* Reads a base-128 varint; returns 0 when truncated or longer than 10 bytes. */
static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    int shift;
    for (shift = 0; shift < 70; shift += 7) {
        uint8_t b;
        if (*p >= end)
            return 0;
        b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 1;
        }
    }
    return 0;
}

static size_t put_varint(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

/* One field: its number, wire type and, for length-delimited fields, the
 * payload. On success *p is past the field. Returns a static description
 * of the problem, or NULL. */
typedef struct wire_field {
    uint32_t number;
    int type;
    const uint8_t *payload;
    size_t payload_size;
} wire_field;

static const char *next_field(const uint8_t **p, const uint8_t *end, wire_field *f)
{
    uint64_t key, v;
    if (!get_varint(p, end, &key))
        return "a field key is truncated";
    if ((key >> 3) == 0 || (key >> 3) > 0x1fffffff)
        return "a field number is out of range";
    f->number = (uint32_t)(key >> 3);
    f->type = (int)(key & 7);
    f->payload = NULL;
    f->payload_size = 0;
    switch (f->type) {
    case WT_VARINT:
        if (!get_varint(p, end, &v))
            return "a varint is truncated";
        return NULL;
    case WT_I64:
        if ((size_t)(end - *p) < 8)
            return "a 64-bit value is truncated";
        *p += 8;
        return NULL;
    case WT_I32:
        if ((size_t)(end - *p) < 4)
            return "a 32-bit value is truncated";
        *p += 4;
        return NULL;
    case WT_LEN:
        if (!get_varint(p, end, &v))
            return "a length is truncated";
        if (v > (uint64_t)(end - *p))
            return "a length-delimited field runs past the end";
        f->payload = *p;
        f->payload_size = (size_t)v;
        *p += v;
        return NULL;
    default:
        return "an unknown or group wire type";
    }
}

/* 1 when the StringStringEntryProto in payload has exactly `key` as its
 * key (the last key field wins, as protobuf parsers do), 0 when not, -1
 * when the entry is malformed. */
static int entry_has_key(const uint8_t *payload, size_t size, const char *key)
{
    const uint8_t *p = payload, *end = payload + size;
    const uint8_t *k = NULL;
    size_t klen = 0;
    wire_field f;
    while (p < end) {
        if (next_field(&p, end, &f))
            return -1;
        if (f.number == ENTRY_KEY && f.type == WT_LEN) {
            k = f.payload;
            klen = f.payload_size;
        }
    }
    return k && klen == strlen(key) && !memcmp(k, key, klen);
}

cnp_status cnp_onnx_set_metadata_buffer(cnp_ctx *ctx, const void *data, size_t size,
                                        const char *name, const char *key, const char *value,
                                        void **out, size_t *out_size)
{
    cnp_status st = CNP_OK;
    Onnx__StringStringEntryProto entry;
    const uint8_t *p = data, *end = (const uint8_t *)data + size;
    uint8_t *buf = NULL, *ebuf = NULL;
    size_t elen, total, pos = 0;
    int replaced = 0;

    *out = NULL;
    *out_size = 0;
    if (size == 0) {
        st = cnp_error(ctx, CNP_ERR_FORMAT, "%s: empty file, not an ONNX model", name);
        goto cleanup;
    }
    onnx__string_string_entry_proto__init(&entry);
    entry.key = (char *)key;
    entry.value = (char *)value;
    elen = onnx__string_string_entry_proto__get_packed_size(&entry);
    ebuf = malloc(elen ? elen : 1);
    if (!ebuf) {
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory encoding %s", key);
        goto cleanup;
    }
    if (onnx__string_string_entry_proto__pack(&entry, ebuf) != elen) {
        st = cnp_error(ctx, CNP_ERR_INTERNAL, "protobuf-c packed %s to an unexpected size", key);
        goto cleanup;
    }
    /* the input, plus one entry: tag (1 byte) + length (<= 10) + payload */
    if (size > ((size_t)-1) - 11 - elen) {
        st = cnp_error(ctx, CNP_ERR_NOMEM, "%s: size overflow", name);
        goto cleanup;
    }
    total = size + 11 + elen;
    buf = malloc(total);
    if (!buf) {
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory copying %s (%zu bytes)", name, total);
        goto cleanup;
    }
    while (p < end) {
        const uint8_t *start = p;
        const char *why;
        wire_field f;
        if ((why = next_field(&p, end, &f)) != NULL) {
            st = cnp_error(ctx, CNP_ERR_FORMAT, "%s: not a valid ONNX (protobuf) file: %s at "
                           "byte %zu", name, why, (size_t)(start - (const uint8_t *)data));
            goto cleanup;
        }
        if (f.number == MODEL_METADATA_PROPS && f.type == WT_LEN) {
            int has = entry_has_key(f.payload, f.payload_size, key);
            if (has < 0) {
                st = cnp_error(ctx, CNP_ERR_FORMAT, "%s: not a valid ONNX (protobuf) file: a "
                               "malformed metadata_props entry at byte %zu", name,
                               (size_t)(start - (const uint8_t *)data));
                goto cleanup;
            }
            if (has) {
                if (!replaced) {
                    buf[pos++] = (uint8_t)((MODEL_METADATA_PROPS << 3) | WT_LEN);
                    pos += put_varint(buf + pos, elen);
                    memcpy(buf + pos, ebuf, elen);
                    pos += elen;
                    replaced = 1;
                }
                continue;
            }
        }
        memcpy(buf + pos, start, (size_t)(p - start));
        pos += (size_t)(p - start);
    }
    if (!replaced) {
        buf[pos++] = (uint8_t)((MODEL_METADATA_PROPS << 3) | WT_LEN);
        pos += put_varint(buf + pos, elen);
        memcpy(buf + pos, ebuf, elen);
        pos += elen;
    }
    *out = buf;
    *out_size = pos;
    buf = NULL;
cleanup:
    free(buf);
    free(ebuf);
    return st;
}

cnp_status cnp_onnx_set_metadata(cnp_ctx *ctx, const char *in_path, const char *out_path,
                                 const char *key, const char *value)
{
    cnp_status st;
    char *data = NULL;
    void *out = NULL;
    size_t size = 0, out_size = 0;

    st = cnp_file_read(ctx, in_path, CNP_FILE_MAX, &data, &size);
    if (st == CNP_OK)
        st = cnp_onnx_set_metadata_buffer(ctx, data, size, in_path, key, value, &out, &out_size);
    if (st == CNP_OK)
        st = cnp_atomic_write(ctx, out_path, out, out_size);
    free(data);
    free(out);
    return st;
}
