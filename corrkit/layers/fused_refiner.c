/* The match-to-match refiner's inference passes, fused per tile of 16 tokens.
 *
 * Compiled at first use by corrkit.layers.fused (one shared library per set of
 * sizes, which are the macros below) and called through ctypes. Each function
 * handles one chunk of tokens of every sample. Within it, a tile of 16 tokens
 * goes through all per-token work of a pass (LayerNorm, the linear layers, the
 * rotary embedding, the GELU, the residuals, the query or key pooling) in
 * registers and the first-level cache. Tokens sit in the vector lanes: a tile
 * holds each feature of its 16 tokens in one vector, so that the narrow layers
 * (16 channels, heads of 4) need no reduction across lanes; a linear layer is
 * a sum of input vectors scaled by the weights, a LayerNorm a sum over its
 * feature vectors. The pooling keeps a running (maximum, sum of exponentials,
 * weighted sum) per sample and head: the online softmax of
 * corrkit.layers.torch_passes.OnlineHeadPool, whose tensors it updates.
 *
 * Sizes: L input channels, E token size, H heads of D channels (I = H * D),
 * M hidden units of the MLP; ROPE whether queries and keys are rotated, QRES
 * whether the queries are added to the attention output.
 *
 * Layouts: a chunk's tokens x, (B, tiles, E, 16), and its queries, keys and
 * values, (3, B, tiles, I, 16), are this file's own (the caller only allocates
 * them); a block's parameters come packed in one float array (the OFF_
 * macros), matrices input-major (the transpose of nn.Linear's weight); the
 * rotary table is (tiles, I / 2, 2, 16): per tile and pair, 16 cosines and 16
 * sines.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#if !defined(L) || !defined(E) || !defined(H) || !defined(D) || !defined(M) || \
    !defined(ROPE) || !defined(QRES)
#error "compile with -DL= -DE= -DH= -DD= -DM= -DROPE= -DQRES="
#endif

#define I (H * D)
#define LANES 16 /* tokens per tile */

/* The packed parameters of one block, in floats. */
#define OFF_LN1W 0
#define OFF_LN1B (OFF_LN1W + E)
#define OFF_QKVW (OFF_LN1B + E)           /* (E, 3I): q, then k, then v */
#define OFF_QKVB (OFF_QKVW + E * 3 * I)
#define OFF_QSC (OFF_QKVB + 3 * I)        /* query score weights times the scale, (I) */
#define OFF_PROJW (OFF_QSC + I)           /* (I, E) */
#define OFF_PROJB (OFF_PROJW + I * E)
#define OFF_LN2W (OFF_PROJB + E)
#define OFF_LN2B (OFF_LN2W + E)
#define OFF_FC1W (OFF_LN2B + E)           /* (E, M) */
#define OFF_FC1B (OFF_FC1W + E * M)
#define OFF_FC2W (OFF_FC1B + M)           /* (M, E) */
#define OFF_FC2B (OFF_FC2W + M * E)

/* The packed embedding (L, E) and bias (E); the final norm (E, E) and read-out (E, 1). */
#define OFF_EMBW 0
#define OFF_EMBB (L * E)
#define OFF_NORMW 0
#define OFF_NORMB E
#define OFF_READW (2 * E)
#define OFF_READB (3 * E)

#define INLINE static inline __attribute__((always_inline))

/* 16 floats, one per token of a tile (GCC's vector extension, lowered to what -march
 * allows: one 512-bit register where there are some); unaligned loads through vtu. */
typedef float vt __attribute__((vector_size(LANES * sizeof(float))));
typedef float vtu __attribute__((vector_size(LANES * sizeof(float)), aligned(sizeof(float))));
typedef int32_t vi __attribute__((vector_size(LANES * sizeof(int32_t))));

INLINE vt splat(float value) { return (vt){0} + value; }

/* Lane-wise select, minimum, maximum, absolute value and square root (GCC's vector
 * extension has operators only; these loops become single instructions). */
INLINE vt select(vi mask, vt yes, vt no) { return (vt)(((vi)yes & mask) | ((vi)no & ~mask)); }
INLINE vt vmax(vt a, vt b) { return select(a > b, a, b); }
INLINE vt vmin(vt a, vt b) { return select(a < b, a, b); }
INLINE vt vabs(vt a) { return (vt)((vi)a & 0x7fffffff); }
INLINE vt vsqrt(vt a) {
    vt r;
    for (int j = 0; j < LANES; ++j) r[j] = sqrtf(a[j]);
    return r;
}

/* exp(x) to about 2e-7 relative for x <= 88: x = n ln2 + r, e^r by its Taylor series to r^7
 * (|r| <= ln2 / 2), 2^n by the exponent bits; below -87 the value at -87 (1.6e-38). */
INLINE vt vexp_clamped(vt x) {
    x = vmin(vmax(x, splat(-87.0f)), splat(88.0f));
    /* round to nearest: adding and removing 1.5 * 2^23 drops the fraction */
    vt n = (x * 1.4426950408889634f + 12582912.0f) - 12582912.0f;
    vt r = x - n * 0.693145751953125f - n * 1.4286068203094173e-06f;
    vt p = splat(1.0f / 5040.0f);
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    vi bits = (__builtin_convertvector(n, vi) + 127) << 23;
    return p * (vt)bits;
}

/* exp(x), 0 below -87 (so exp(-inf) = 0, as a softmax weight must be). */
INLINE vt vexp(vt x) {
    vi under = x < -87.0f;
    return (vt)((vi)vexp_clamped(x) & ~under);
}

/* 1 / x: with AVX-512, the 14-bit estimate and one Newton step (within 2^-27 relative,
 * a few times cheaper than a division); elsewhere a division. */
INLINE vt vrecip(vt x) {
#if defined(__AVX512F__) && LANES == 16
    vt r = (vt)_mm512_rcp14_ps((__m512)x);
    return r * (2.0f - x * r);
#else
    return 1.0f / x;
#endif
}

/* The exact GELU, x Phi(x), with erf by Abramowitz and Stegun 7.1.26 (error below 1.5e-7). */
INLINE vt vgelu(vt x) {
    vt z = vabs(x) * 0.7071067811865476f;
    vt t = vrecip(1.0f + 0.3275911f * z);
    vt poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f
              + t * (-1.453152027f + t * 1.061405429f))));
    vt erf_abs = 1.0f - poly * vexp_clamped(-z * z); /* 1.6e-38 for 0 changes nothing */
    vi negative = x < 0.0f;
    vt erf = select(negative, -erf_abs, erf_abs);
    return 0.5f * x * (1.0f + erf);
}

INLINE float hmax(vt x) {
    float m = x[0];
    for (int j = 1; j < LANES; ++j) m = x[j] > m ? x[j] : m;
    return m;
}

INLINE float hsum(vt x) {
    float s = 0.0f;
    for (int j = 0; j < LANES; ++j) s += x[j];
    return s;
}

/* out[n] = bias[n] + sum_k w[k, n] in[k]: K input vectors, N outputs, w (K, N); sixteen
 * outputs at a time, their accumulators in registers, each input vector loaded once
 * per sixteen and each weight broadcast from memory. */
INLINE void linear(int K, int N, const vt *in, const float *w, const float *bias, vt *out) {
    int n0 = 0;
    for (; n0 + 16 <= N; n0 += 16) {
        vt acc[16];
        for (int j = 0; j < 16; ++j) acc[j] = splat(bias[n0 + j]);
        for (int k = 0; k < K; ++k) {
            vt v = in[k];
            for (int j = 0; j < 16; ++j) acc[j] += w[k * N + n0 + j] * v;
        }
        for (int j = 0; j < 16; ++j) out[n0 + j] = acc[j];
    }
    for (; n0 + 4 <= N; n0 += 4) {
        vt acc[4];
        for (int j = 0; j < 4; ++j) acc[j] = splat(bias[n0 + j]);
        for (int k = 0; k < K; ++k)
            for (int j = 0; j < 4; ++j) acc[j] += w[k * N + n0 + j] * in[k];
        for (int j = 0; j < 4; ++j) out[n0 + j] = acc[j];
    }
    for (; n0 < N; ++n0) {
        vt acc = splat(bias[n0]);
        for (int k = 0; k < K; ++k) acc += w[k * N + n0] * in[k];
        out[n0] = acc;
    }
}

/* LayerNorm over the E feature vectors of a tile, as torch: biased variance, eps inside. */
INLINE void layer_norm(const vt *x, vt *y, const float *w, const float *b, float eps) {
    vt mean = splat(0.0f), var = splat(0.0f);
    for (int e = 0; e < E; ++e) mean += x[e];
    mean *= 1.0f / E;
    for (int e = 0; e < E; ++e) var += (x[e] - mean) * (x[e] - mean);
    vt rstd = 1.0f / vsqrt(var * (1.0f / E) + eps);
    for (int e = 0; e < E; ++e) y[e] = (x[e] - mean) * rstd * w[e] + b[e];
}

/* The running softmax pool of one sample over the tiles of a call: a common maximum per
 * head, and per lane the sum of exponentials and the weighted sums. */
typedef struct {
    float max[H];
    vt norm[H];
    vt sum[H][D];
} lane_pool;

INLINE void lane_pool_start(lane_pool *pool) {
    for (int h = 0; h < H; ++h) {
        pool->max[h] = -INFINITY;
        pool->norm[h] = splat(0.0f);
        for (int d = 0; d < D; ++d) pool->sum[h][d] = splat(0.0f);
    }
}

/* Adds a tile's vectors x (I, 16) with logits <x_h, scores_h>; lanes outside valid
 * (all ones for a token, zero past the chunk's end) are left out. */
INLINE void lane_pool_add(lane_pool *pool, const vt *x, const float *scores, vi valid) {
    for (int h = 0; h < H; ++h) {
        vt logit = splat(0.0f);
        for (int d = 0; d < D; ++d) logit += x[h * D + d] * scores[h * D + d];
        logit = select(valid, logit, splat(-INFINITY));
        float top = hmax(logit);
        if (top > pool->max[h]) { /* rescale what was pooled so far to the new maximum */
            float r = isinf(pool->max[h]) ? 0.0f : expf(pool->max[h] - top);
            pool->norm[h] *= r;
            for (int d = 0; d < D; ++d) pool->sum[h][d] *= r;
            pool->max[h] = top;
        }
        vt weight = vexp(logit - pool->max[h]);
        pool->norm[h] += weight;
        for (int d = 0; d < D; ++d) pool->sum[h][d] += weight * x[h * D + d];
    }
}

/* Merges a sample's lane pool into the caller's pool arrays: max (H), norm (H), sum (H, D). */
INLINE void lane_pool_finish(const lane_pool *pool, float *max, float *norm, float *sum) {
    for (int h = 0; h < H; ++h) {
        if (isinf(pool->max[h])) continue; /* nothing pooled */
        float top = pool->max[h] > max[h] ? pool->max[h] : max[h];
        float old = isinf(max[h]) ? 0.0f : expf(max[h] - top), add = expf(pool->max[h] - top);
        norm[h] = norm[h] * old + hsum(pool->norm[h]) * add;
        for (int d = 0; d < D; ++d)
            sum[h * D + d] = sum[h * D + d] * old + hsum(pool->sum[h][d]) * add;
        max[h] = top;
    }
}

INLINE vi valid_lanes(int64_t n) {
    vi lanes;
    for (int j = 0; j < LANES; ++j) lanes[j] = j < n ? -1 : 0;
    return lanes;
}

/* A tile's q, k, v from its tokens x (E, 16): LayerNorm, projection, q and k rotated by
 * the tile's rotary table (I / 2, 2, 16); stored to q, k and v (I, 16 each); the queries
 * added to the query pool. */
INLINE void project_tile(const vt *x, const float *p, const float *table, float eps,
                         vi valid, vt *q, vt *k, vt *v, lane_pool *pool) {
    vt xn[E], out[3 * I];
    layer_norm(x, xn, p + OFF_LN1W, p + OFF_LN1B, eps);
    linear(E, 3 * I, xn, p + OFF_QKVW, p + OFF_QKVB, out);
#if ROPE
    const vtu *cs = (const vtu *)table;
    for (int part = 0; part < 2; ++part)
        for (int g = 0; g < I / 2; ++g) {
            vt a = out[part * I + 2 * g], b = out[part * I + 2 * g + 1];
            vt c = cs[2 * g], s = cs[2 * g + 1];
            out[part * I + 2 * g] = a * c - b * s;
            out[part * I + 2 * g + 1] = a * s + b * c;
        }
#else
    (void)table;
#endif
    memcpy(q, out, sizeof(vt) * I);
    memcpy(k, out + I, sizeof(vt) * I);
    memcpy(v, out + 2 * I, sizeof(vt) * I);
    lane_pool_add(pool, out, p + OFF_QSC, valid);
}

#define TILES(tc) (((tc) + LANES - 1) / LANES)

/* The embedding of a chunk of tc tokens of every sample, then the first block's q, k, v
 * and query pool. tokens: (B, L, T) with strides sb and sl, contiguous along T, from
 * the chunk's first token; table: from the chunk's first tile (the chunk starts at a
 * multiple of 16 tokens); max, norm: (B, H); sum: (B, H, D). */
void ck_embed_project(int64_t batch, int64_t tc, const float *tokens, int64_t sb, int64_t sl,
                      const float *embed, const float *block, const float *table, float eps,
                      float *x, float *qkv, float *max, float *norm, float *sum) {
    int64_t tiles = TILES(tc), plane = batch * tiles * I; /* vectors per plane */
    for (int64_t b = 0; b < batch; ++b) {
        lane_pool pool;
        lane_pool_start(&pool);
        for (int64_t tile = 0; tile < tiles; ++tile) {
            int64_t start = tile * LANES, n = tc - start < LANES ? tc - start : LANES;
            vt in[L], tokens_x[E];
            const float *src = tokens + b * sb + start;
            for (int l = 0; l < L; ++l) {
                if (n == LANES) {
                    in[l] = *(const vtu *)(src + l * sl);
                } else {
                    in[l] = splat(0.0f);
                    for (int j = 0; j < n; ++j) in[l][j] = src[l * sl + j];
                }
            }
            linear(L, E, in, embed + OFF_EMBW, embed + OFF_EMBB, tokens_x);
            int64_t at = b * tiles + tile;
            memcpy(x + at * E * LANES, tokens_x, sizeof tokens_x);
            vt *q = (vt *)(qkv + at * I * LANES);
            project_tile(tokens_x, block, table + tile * I * LANES, eps, valid_lanes(n),
                         q, q + plane, q + 2 * plane, &pool);
        }
        lane_pool_finish(&pool, max + b * H, norm + b * H, sum + b * I);
    }
}

/* The key pool of a chunk: logits <k_h, key_scores_h> with key_scores (B, I) per sample;
 * qkv as ck_embed_project writes it. */
void ck_key_pool(int64_t batch, int64_t tc, const float *qkv, const float *key_scores,
                 float *max, float *norm, float *sum) {
    int64_t tiles = TILES(tc), plane = batch * tiles * I; /* vectors per plane */
    for (int64_t b = 0; b < batch; ++b) {
        lane_pool pool;
        lane_pool_start(&pool);
        for (int64_t tile = 0; tile < tiles; ++tile) {
            int64_t n = tc - tile * LANES < LANES ? tc - tile * LANES : LANES;
            const vt *k = (const vt *)(qkv + (plane + (b * tiles + tile) * I) * LANES);
            lane_pool_add(&pool, k, key_scores + b * I, valid_lanes(n));
        }
        lane_pool_finish(&pool, max + b * H, norm + b * H, sum + b * I);
    }
}

/* A block's output for a chunk, from its tokens x and kept q, v and the pooled key
 * global_key (B, I): x + proj(q + v k), then + mlp(LN(x)). With a following block (next
 * not NULL) x and qkv are overwritten by the output and the next block's q, k, v, and
 * its query pool is updated; after the last block the final norm and read-out write
 * out (B, tiles * 16), of which the first tc per sample are the chunk's. */
void ck_output(int64_t batch, int64_t tc, float *x, float *qkv, const float *global_key,
               const float *block, float eps, const float *next, const float *table,
               float next_eps, float *max, float *norm, float *sum, const float *final,
               float final_eps, float *out) {
    const float *p = block;
    int64_t tiles = TILES(tc), plane = batch * tiles * I; /* vectors per plane */
    for (int64_t b = 0; b < batch; ++b) {
        lane_pool pool;
        lane_pool_start(&pool);
        const float *gk = global_key + b * I;
        for (int64_t tile = 0; tile < tiles; ++tile) {
            int64_t at = b * tiles + tile, n = tc - tile * LANES < LANES ? tc - tile * LANES
                                                                        : LANES;
            vt *xt = (vt *)(x + at * E * LANES), *q = (vt *)(qkv + at * I * LANES);
            vt *k = q + plane, *v = q + 2 * plane;
            vt mixed[I], y[E], xn[E], hidden[M];
            for (int i = 0; i < I; ++i) mixed[i] = QRES ? q[i] + v[i] * gk[i] : v[i] * gk[i];
            linear(I, E, mixed, p + OFF_PROJW, p + OFF_PROJB, y);
            for (int e = 0; e < E; ++e) xt[e] += y[e];
            layer_norm(xt, xn, p + OFF_LN2W, p + OFF_LN2B, eps);
            linear(E, M, xn, p + OFF_FC1W, p + OFF_FC1B, hidden);
            for (int j = 0; j < M; ++j) hidden[j] = vgelu(hidden[j]);
            linear(M, E, hidden, p + OFF_FC2W, p + OFF_FC2B, y);
            for (int e = 0; e < E; ++e) xt[e] += y[e];
            if (next) {
                project_tile(xt, next, table + tile * I * LANES, next_eps, valid_lanes(n),
                             q, k, v, &pool);
            } else {
                layer_norm(xt, xn, final + OFF_NORMW, final + OFF_NORMB, final_eps);
                vt read = splat(final[OFF_READB]);
                for (int e = 0; e < E; ++e) read += xn[e] * final[OFF_READW + e];
                *(vtu *)(out + b * tiles * LANES + tile * LANES) = read;
            }
        }
        if (next) lane_pool_finish(&pool, max + b * H, norm + b * H, sum + b * I);
    }
}
