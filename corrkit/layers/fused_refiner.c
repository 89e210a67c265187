/* The match-to-match refiner's inference passes, fused per tile of tokens.
 *
 * Compiled at first use by corrkit.layers.fused (one shared library per set of
 * sizes, which are the macros below) and called through ctypes. Each function
 * handles one chunk of tokens of every sample; within it, tiles of TILE tokens
 * go through all per-token work of a pass (LayerNorm, the linear layers, the
 * rotary embedding, the GELU, the residuals, the query or key pooling) while
 * they stay in the first-level cache. The pooling of a chunk updates a running
 * (maximum, sum of exponentials, weighted sum) per sample and head: the online
 * softmax of corrkit.layers.blocked.OnlineHeadPool, whose tensors these are.
 *
 * Sizes: L input channels, E token size, H heads of D channels (I = H * D),
 * M hidden units of the MLP; ROPE whether queries and keys are rotated, QRES
 * whether the queries are added to the attention output.
 *
 * A block's parameters come packed in one float array (see the OFF_ macros);
 * matrices are stored input-major (the transpose of nn.Linear's weight), so
 * that each input value scales a contiguous row of outputs.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#if !defined(L) || !defined(E) || !defined(H) || !defined(D) || !defined(M) || \
    !defined(ROPE) || !defined(QRES)
#error "compile with -DL= -DE= -DH= -DD= -DM= -DROPE= -DQRES="
#endif

#define I (H * D)
#define TILE 32 /* tokens per tile: a multiple of the 4-token micro-kernel */

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
#define BLOCK_FLOATS (OFF_FC2B + E)

/* The packed embedding (L, E) and bias (E); the final norm (E, E) and read-out (E, 1). */
#define OFF_EMBW 0
#define OFF_EMBB (L * E)
#define OFF_NORMW 0
#define OFF_NORMB E
#define OFF_READW (2 * E)
#define OFF_READB (3 * E)

#define INLINE static inline __attribute__((always_inline))
/* A sum the compiler may reorder into vector lanes (-fopenmp-simd; ignored without it). */
#define PRAGMA(text) _Pragma(#text)
#define SIMD_SUM(x) PRAGMA(omp simd reduction(+:x))

int ck_block_floats(void) { return BLOCK_FLOATS; }

/* exp(x) to about 2e-7 relative, branch-free so that loops of it vectorise: x = n ln2 + r,
 * e^r by its Taylor series to r^7 (|r| <= ln2 / 2), 2^n by the exponent bits. */
INLINE float fast_exp(float x) {
    x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x; /* fminf and fmaxf are calls */
    float n = rintf(x * 1.4426950408889634f);
    float r = x - n * 0.693145751953125f - n * 1.4286068203094173e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* The exact GELU, x Phi(x), with erf by Abramowitz and Stegun 7.1.26 (error below 1.5e-7). */
INLINE float gelu(float x) {
    float z = fabsf(x) * 0.7071067811865476f;
    float t = 1.0f / (1.0f + 0.3275911f * z);
    float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f
                 + t * (-1.453152027f + t * 1.061405429f))));
    float erf_abs = 1.0f - poly * fast_exp(-z * z);
    float erf = x < 0.0f ? -erf_abs : erf_abs;
    return 0.5f * x * (1.0f + erf);
}

/* The vector width in floats: the widest of 16, 8 and 4 that divides every output width
 * of the linear layers (E, M, 3I), so that their rows are whole vectors (GCC's vector
 * extension, lowered to what -march allows: 512-bit registers where there are some). */
#if E % 16 == 0 && M % 16 == 0 && (3 * I) % 16 == 0
#define VW 16
#elif E % 8 == 0 && M % 8 == 0 && (3 * I) % 8 == 0
#define VW 8
#elif E % 4 == 0 && M % 4 == 0 && (3 * I) % 4 == 0
#define VW 4
#else
#define VW 1
#endif
typedef float vec __attribute__((vector_size(VW * sizeof(float)), aligned(sizeof(float))));

/* c[t] = bias + a[t] W for the TILE rows of a tile: a (TILE, K) with row stride lda,
 * W (K, N), c (TILE, N) with row stride ldc (N a multiple of VW); four rows at a time,
 * their accumulators in registers, so that four independent accumulations hide the
 * multiply-add latency. */
#define MATMUL(K, N, a, lda, w, bias, c, ldc)                                     \
    for (int t0 = 0; t0 < TILE; t0 += 4) {                                        \
        vec acc[4][(N) / VW];                                                     \
        for (int u = 0; u < 4; ++u)                                               \
            for (int j = 0; j < (N) / VW; ++j) acc[u][j] = *(const vec *)((bias) + j * VW); \
        for (int k = 0; k < (K); ++k) {                                           \
            const float *wk = (w) + k * (N);                                      \
            for (int j = 0; j < (N) / VW; ++j) {                                  \
                vec wj = *(const vec *)(wk + j * VW);                             \
                for (int u = 0; u < 4; ++u)                                       \
                    acc[u][j] += (a)[(t0 + u) * (lda) + k] * wj;                  \
            }                                                                     \
        }                                                                         \
        for (int u = 0; u < 4; ++u)                                               \
            for (int j = 0; j < (N) / VW; ++j)                                    \
                *(vec *)((c) + (t0 + u) * (ldc) + j * VW) = acc[u][j];            \
    }

/* LayerNorm of the TILE rows of x (TILE, E) into y, as torch: biased variance, eps inside. */
INLINE void layer_norm(const float *x, float *y, const float *w, const float *b, float eps) {
    for (int t = 0; t < TILE; ++t) {
        const float *row = x + t * E;
        float mean = 0.0f, var = 0.0f;
        SIMD_SUM(mean) for (int e = 0; e < E; ++e) mean += row[e];
        mean *= 1.0f / E;
        SIMD_SUM(var) for (int e = 0; e < E; ++e) var += (row[e] - mean) * (row[e] - mean);
        float rstd = 1.0f / sqrtf(var * (1.0f / E) + eps);
        for (int e = 0; e < E; ++e) y[t * E + e] = (row[e] - mean) * rstd * w[e] + b[e];
    }
}

/* Adds n tokens' rows x (row stride ldx, heads' slices of D) to a running softmax pool
 * of one sample, with logits[h] = <x_h, scores_h>: max (H), norm (H), sum (H, D). */
INLINE void pool_update(int n, const float *x, int ldx, const float *scores,
                        float *max, float *norm, float *sum) {
    float logits[H][TILE];
    for (int t = 0; t < n; ++t)
        for (int h = 0; h < H; ++h) {
            float s = 0.0f;
            for (int d = 0; d < D; ++d) s += x[t * ldx + h * D + d] * scores[h * D + d];
            logits[h][t] = s;
        }
    for (int h = 0; h < H; ++h) {
        float top = max[h];
        for (int t = 0; t < n; ++t) top = logits[h][t] > top ? logits[h][t] : top;
        if (top > max[h]) { /* rescale what was pooled so far to the new maximum */
            float r = isinf(max[h]) ? 0.0f : fast_exp(max[h] - top);
            norm[h] *= r;
            for (int d = 0; d < D; ++d) sum[h * D + d] *= r;
            max[h] = top;
        }
        float weights[TILE], total = 0.0f;
        SIMD_SUM(total) for (int t = 0; t < n; ++t) {
            weights[t] = fast_exp(logits[h][t] - top);
            total += weights[t];
        }
        norm[h] += total;
        for (int d = 0; d < D; ++d) {
            float s = 0.0f;
            SIMD_SUM(s) for (int t = 0; t < n; ++t) s += weights[t] * x[t * ldx + h * D + d];
            sum[h * D + d] += s;
        }
    }
}

/* From the tile's tokens x (TILE, E): a block's q, k, v (q and k rotated by the tokens'
 * rows of the (T, I / 2, 2) cosine and sine table), stored to the planes of qkv (q, then k,
 * then v, each (rows, I), plane floats apart), and the queries added to the query pool. */
INLINE void project_tile(int n, const float *x, const float *p, const float *table, float eps,
                         float *qkv, int64_t plane, float *max, float *norm, float *sum) {
    float xn[TILE * E], out[TILE * 3 * I];
    layer_norm(x, xn, p + OFF_LN1W, p + OFF_LN1B, eps);
    MATMUL(E, 3 * I, xn, E, p + OFF_QKVW, p + OFF_QKVB, out, 3 * I);
#if ROPE
    for (int t = 0; t < n; ++t) {
        const float *cs = table + (int64_t)t * I;
        for (int part = 0; part < 2; ++part) {
            float *row = out + t * 3 * I + part * I;
            for (int g = 0; g < I / 2; ++g) {
                float a = row[2 * g], b = row[2 * g + 1], c = cs[2 * g], s = cs[2 * g + 1];
                row[2 * g] = a * c - b * s;
                row[2 * g + 1] = a * s + b * c;
            }
        }
    }
#else
    (void)table;
#endif
    for (int part = 0; part < 3; ++part)
        for (int t = 0; t < n; ++t)
            memcpy(qkv + part * plane + t * I, out + t * 3 * I + part * I, sizeof(float) * I);
    pool_update(n, out, 3 * I, p + OFF_QSC, max, norm, sum);
}

/* Loads n rows of (row stride ld) into a TILE-row buffer, zeros below. */
INLINE void load_tile(int n, const float *src, int ld, float *dst, int width) {
    for (int t = 0; t < n; ++t) memcpy(dst + t * width, src + (int64_t)t * ld, sizeof(float) * width);
    memset(dst + n * width, 0, sizeof(float) * (TILE - n) * width);
}

/* The embedding of a chunk of tc tokens of every sample, then the first block's q, k, v
 * and query pool. tokens: (B, L, tc) with strides sb, sl, st (channels first, as the
 * correlation holds them); x: (B, tc, E); qkv: (3, B, tc, I); table: the chunk's rows;
 * max, norm: (B, H); sum: (B, H, D). */
void ck_embed_project(int64_t batch, int64_t tc, const float *tokens, int64_t sb, int64_t sl,
                      int64_t st, const float *embed, const float *block, const float *table,
                      float eps, float *x, float *qkv, float *max, float *norm, float *sum) {
    for (int64_t b = 0; b < batch; ++b)
        for (int64_t start = 0; start < tc; start += TILE) {
            int n = tc - start < TILE ? (int)(tc - start) : TILE;
            float in[TILE * L], tile[TILE * E];
            const float *src = tokens + b * sb + start * st;
            for (int t = 0; t < TILE; ++t)
                for (int l = 0; l < L; ++l) in[t * L + l] = t < n ? src[l * sl + t * st] : 0.0f;
            MATMUL(L, E, in, L, embed + OFF_EMBW, embed + OFF_EMBB, tile, E);
            int64_t row = b * tc + start;
            memcpy(x + row * E, tile, sizeof(float) * n * E);
            project_tile(n, tile, block, table + start * I, eps, qkv + row * I, batch * tc * I,
                         max + b * H, norm + b * H, sum + b * I);
        }
}

/* The key pool of a chunk: logits <k_h, key_scores_h> with key_scores (B, I) per sample;
 * qkv as ck_embed_project writes it. */
void ck_key_pool(int64_t batch, int64_t tc, const float *qkv, const float *key_scores,
                 float *max, float *norm, float *sum) {
    for (int64_t b = 0; b < batch; ++b)
        for (int64_t start = 0; start < tc; start += TILE) {
            int n = tc - start < TILE ? (int)(tc - start) : TILE;
            pool_update(n, qkv + (batch + b) * tc * I + start * I, I, key_scores + b * I,
                        max + b * H, norm + b * H, sum + b * I);
        }
}

/* A block's output for a chunk, from its tokens x and kept q, v and the pooled key
 * global_key (B, I): x + proj(q + v k), then + mlp(LN(x)). With a following block (next
 * not NULL) x and qkv are overwritten by the output and the next block's q, k, v, and
 * its query pool is updated; after the last block the final norm and read-out write
 * out (B, tc). */
void ck_output(int64_t batch, int64_t tc, float *x, float *qkv, const float *global_key,
               const float *block, float eps, const float *next, const float *table,
               float next_eps, float *max, float *norm, float *sum, const float *final,
               float final_eps, float *out) {
    const float *p = block;
    for (int64_t b = 0; b < batch; ++b)
        for (int64_t start = 0; start < tc; start += TILE) {
            int n = tc - start < TILE ? (int)(tc - start) : TILE;
            int64_t row = b * tc + start;
            const float *gk = global_key + b * I;
            float tile[TILE * E], mixed[TILE * I], y[TILE * E], xn[TILE * E], hidden[TILE * M];
            load_tile(n, x + row * E, E, tile, E);
            const float *q = qkv + row * I, *v = qkv + (2 * batch * tc + row) * I;
            for (int t = 0; t < n; ++t)
                for (int i = 0; i < I; ++i)
                    mixed[t * I + i] = QRES ? q[t * I + i] + v[t * I + i] * gk[i]
                                            : v[t * I + i] * gk[i];
            memset(mixed + n * I, 0, sizeof(float) * (TILE - n) * I);
            MATMUL(I, E, mixed, I, p + OFF_PROJW, p + OFF_PROJB, y, E);
            for (int j = 0; j < TILE * E; ++j) tile[j] += y[j];
            layer_norm(tile, xn, p + OFF_LN2W, p + OFF_LN2B, eps);
            MATMUL(E, M, xn, E, p + OFF_FC1W, p + OFF_FC1B, hidden, M);
            for (int j = 0; j < TILE * M; ++j) hidden[j] = gelu(hidden[j]);
            MATMUL(M, E, hidden, M, p + OFF_FC2W, p + OFF_FC2B, y, E);
            for (int j = 0; j < TILE * E; ++j) tile[j] += y[j];
            if (next) {
                memcpy(x + row * E, tile, sizeof(float) * n * E);
                project_tile(n, tile, next, table + start * I, next_eps, qkv + row * I,
                             batch * tc * I,
                             max + b * H, norm + b * H, sum + b * I);
            } else {
                layer_norm(tile, xn, final + OFF_NORMW, final + OFF_NORMB, final_eps);
                for (int t = 0; t < n; ++t) {
                    float s = final[OFF_READB];
                    SIMD_SUM(s) for (int e = 0; e < E; ++e) s += xn[t * E + e] * final[OFF_READW + e];
                    out[row + t] = s;
                }
            }
        }
}
