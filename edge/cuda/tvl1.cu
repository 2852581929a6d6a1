// Batched TV-L1 optical flow, optical strain and the STSTNet/HTNet input form, on the GPU.
//
// The CPU reference is edge/perception/flow.py: every kernel here mirrors one of its steps, in float32
// and in the same order of operations (compile with -fmad=false so that no multiply-add is fused and the
// rounding matches numpy's). Host-side constants (Gaussian taps, resampling ratios, area weights) come
// from flow.py, uploaded as they are. Loaded by edge/perception/flow_cuda.py (pycuda).
//
// Layout: every field is float32 [batch][H][W], contiguous; blockIdx.z is the pair in the batch.
// Borders are replicated everywhere, as in the reference. Kernels are extern "C" for pycuda get_function.

__device__ __forceinline__ int clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// uint8 frames -> float32 on the 0..255 scale.
extern "C" __global__ void u8_to_f32(const unsigned char* __restrict__ src, float* __restrict__ dst, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = (float)src[i];
}

// Separable Gaussian, horizontal pass: taps summed left to right (flow.gaussian_blur).
extern "C" __global__ void blur_rows(const float* __restrict__ src, float* __restrict__ dst, int H, int W,
                          const float* __restrict__ taps, int ntaps)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= W || y >= H) return;
    const float* row = src + (size_t)blockIdx.z * H * W + (size_t)y * W;
    int r = ntaps / 2;
    float acc = 0.0f;
    for (int k = 0; k < ntaps; ++k) acc = acc + taps[k] * row[clampi(x + k - r, 0, W - 1)];
    dst[(size_t)blockIdx.z * H * W + (size_t)y * W + x] = acc;
}

// Separable Gaussian, vertical pass.
extern "C" __global__ void blur_cols(const float* __restrict__ src, float* __restrict__ dst, int H, int W,
                          const float* __restrict__ taps, int ntaps)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= W || y >= H) return;
    const float* img = src + (size_t)blockIdx.z * H * W;
    int r = ntaps / 2;
    float acc = 0.0f;
    for (int k = 0; k < ntaps; ++k) acc = acc + taps[k] * img[(size_t)clampi(y + k - r, 0, H - 1) * W + x];
    dst[(size_t)blockIdx.z * H * W + (size_t)y * W + x] = acc;
}

// Bilinear resampling with pixel centres aligned, times `scale` (1 for images, the size ratio for flow).
// ry = Hs / Hd and rx = Ws / Wd are float32 values computed on the host (flow._bilinear_coords).
extern "C" __global__ void resize_bilinear(const float* __restrict__ src, float* __restrict__ dst, int Hs, int Ws,
                                int Hd, int Wd, float ry, float rx, float scale, int apply_scale)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= Wd || y >= Hd) return;
    const float* img = src + (size_t)blockIdx.z * Hs * Ws;
    float sx = ((float)x + 0.5f) * rx - 0.5f;
    float sy = ((float)y + 0.5f) * ry - 0.5f;
    float flx = floorf(sx), fly = floorf(sy);
    float fx = sx - flx, fy = sy - fly;
    int x0 = clampi((int)flx, 0, Ws - 1), x1 = clampi((int)flx + 1, 0, Ws - 1);
    int y0 = clampi((int)fly, 0, Hs - 1), y1 = clampi((int)fly + 1, 0, Hs - 1);
    float top = (1.0f - fx) * img[(size_t)y0 * Ws + x0] + fx * img[(size_t)y0 * Ws + x1];
    float bottom = (1.0f - fx) * img[(size_t)y1 * Ws + x0] + fx * img[(size_t)y1 * Ws + x1];
    float v = (1.0f - fy) * top + fy * bottom;
    if (apply_scale) v = v * scale;
    dst[(size_t)blockIdx.z * Hd * Wd + (size_t)y * Wd + x] = v;
}

// (I[x+1] - I[x-1]) / 2 along x and y (flow.centred_gradient).
extern "C" __global__ void centred_gradient(const float* __restrict__ src, float* __restrict__ gx, float* __restrict__ gy,
                                 int H, int W)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= W || y >= H) return;
    size_t base = (size_t)blockIdx.z * H * W;
    const float* img = src + base;
    size_t i = (size_t)y * W + x;
    gx[base + i] = (img[(size_t)y * W + clampi(x + 1, 0, W - 1)] - img[(size_t)y * W + clampi(x - 1, 0, W - 1)]) * 0.5f;
    gy[base + i] = (img[(size_t)clampi(y + 1, 0, H - 1) * W + x] - img[(size_t)clampi(y - 1, 0, H - 1) * W + x]) * 0.5f;
}

// Keys cubic-convolution weights, a = -0.75 (flow.CUBIC_A), of taps -1, 0, +1, +2 (flow._cubic_weights).
#define CUBIC_A (-0.75f)
__device__ __forceinline__ void cubic_weights(float t, float w[4])
{
    float t2 = t * t;
    float t3 = t2 * t;
    float s = 1.0f - t;
    float s2 = s * s;
    float s3 = s2 * s;
    w[0] = CUBIC_A * ((t3 - 2.0f * t2) + t);
    w[1] = ((CUBIC_A + 2.0f) * t3 - (CUBIC_A + 3.0f) * t2) + 1.0f;
    w[2] = ((CUBIC_A + 2.0f) * s3 - (CUBIC_A + 3.0f) * s2) + 1.0f;
    w[3] = CUBIC_A * (t2 - t3);
}

__device__ __forceinline__ float bicubic(const float* __restrict__ img, const int* cols, const int* rows,
                                         const float* wx, const float* wy)
{
    float acc = 0.0f;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const float* r = img + rows[j];
        float line = wx[0] * r[cols[0]];
        line = line + wx[1] * r[cols[1]];
        line = line + wx[2] * r[cols[2]];
        line = line + wx[3] * r[cols[3]];
        acc = acc + wy[j] * line;
    }
    return acc;
}

// One warp of the data term: I1, I1x, I1y sampled at (x + u1, y + u2), then the linearisation
// rho_c = I1w - I1wx u1 - I1wy u2 - I0 and 1 / |grad I1w|^2 (0 where flat or outside) (flow._tvl1_level).
extern "C" __global__ void warp_linearise(const float* __restrict__ i0, const float* __restrict__ i1,
                               const float* __restrict__ i1x, const float* __restrict__ i1y,
                               const float* __restrict__ u1, const float* __restrict__ u2,
                               float* __restrict__ i1wx, float* __restrict__ i1wy,
                               float* __restrict__ rho_c, float* __restrict__ inv_grad, int H, int W)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= W || y >= H) return;
    size_t base = (size_t)blockIdx.z * H * W;
    size_t i = base + (size_t)y * W + x;
    float a = u1[i], b = u2[i];
    float xs = (float)x + a;
    float ys = (float)y + b;
    float fx0 = floorf(xs), fy0 = floorf(ys);
    float wx[4], wy[4];
    cubic_weights(xs - fx0, wx);
    cubic_weights(ys - fy0, wy);
    int ix = (int)fx0, iy = (int)fy0;
    int cols[4], rows[4];
#pragma unroll
    for (int d = 0; d < 4; ++d) {
        cols[d] = clampi(ix + d - 1, 0, W - 1);
        rows[d] = clampi(iy + d - 1, 0, H - 1) * W;
    }
    float w1 = bicubic(i1 + base, cols, rows, wx, wy);
    float gx = bicubic(i1x + base, cols, rows, wx, wy);
    float gy = bicubic(i1y + base, cols, rows, wx, wy);
    float grad = gx * gx + gy * gy;
    i1wx[i] = gx;
    i1wy[i] = gy;
    rho_c[i] = ((w1 - gx * a) - gy * b) - i0[i];
    // no data term where the image is flat or the flow points outside frame 1
    bool off = grad <= 1e-10f || xs < 0.0f || xs > (float)(W - 1) || ys < 0.0f || ys > (float)(H - 1);
    inv_grad[i] = off ? 0.0f : 1.0f / grad;
}

// Primal step at pixel i = (x, y): thresholding of the data term plus theta * div p (flow._tvl1_level,
// first half). u1/u2 are updated in place: a thread reads only its own u and the duals. The pointers are
// either global memory (update_u) or a level held in shared memory (iterate_level_smem): one body for both.
__device__ __forceinline__ void primal_at(float* u1, float* u2, const float* p11, const float* p12,
                                          const float* p21, const float* p22, float gx, float gy, float rc,
                                          float ig, int i, int x, int y, int W, float lt, float theta)
{
    float a = u1[i], b = u2[i];
    float rho = (rc + gx * a) + gy * b;
    float t = fminf(fmaxf(rho * ig, -lt), lt);
    // backward differences with p[-1] = 0, in the reference's order ((p1x + p2) - p2[y-1]) * theta
    float d1 = p11[i];
    float d2 = p21[i];
    if (x > 0) { d1 = d1 - p11[i - 1]; d2 = d2 - p21[i - 1]; }
    d1 = d1 + p12[i];
    d2 = d2 + p22[i];
    if (y > 0) { d1 = d1 - p12[i - W]; d2 = d2 - p22[i - W]; }
    d1 = d1 * theta;
    d2 = d2 * theta;
    a = a + (-gx) * t;
    b = b + (-gy) * t;
    u1[i] = a + d1;
    u2[i] = b + d2;
}

// Dual step at pixel i: p = (p + taut grad u) / (1 + taut |grad u|), forward differences (second half).
__device__ __forceinline__ void dual_at(const float* u1, const float* u2, float* p11, float* p12, float* p21,
                                        float* p22, int i, int x, int y, int H, int W, float taut)
{
    float a = u1[i], b = u2[i];
    float ax = x < W - 1 ? u1[i + 1] - a : 0.0f;
    float ay = y < H - 1 ? u1[i + W] - a : 0.0f;
    float bx = x < W - 1 ? u2[i + 1] - b : 0.0f;
    float by = y < H - 1 ? u2[i + W] - b : 0.0f;
    float n1 = ax * ax;
    n1 = n1 + ay * ay;
    n1 = sqrtf(n1) * taut + 1.0f;
    float n2 = bx * bx;
    n2 = n2 + by * by;
    n2 = sqrtf(n2) * taut + 1.0f;
    p11[i] = (p11[i] + ax * taut) / n1;
    p12[i] = (p12[i] + ay * taut) / n1;
    p21[i] = (p21[i] + bx * taut) / n2;
    p22[i] = (p22[i] + by * taut) / n2;
}

extern "C" __global__ void update_u(float* __restrict__ u1, float* __restrict__ u2,
                         const float* __restrict__ p11, const float* __restrict__ p12,
                         const float* __restrict__ p21, const float* __restrict__ p22,
                         const float* __restrict__ i1wx, const float* __restrict__ i1wy,
                         const float* __restrict__ rho_c, const float* __restrict__ inv_grad,
                         float lt, float theta, int H, int W)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= W || y >= H) return;
    size_t base = (size_t)blockIdx.z * H * W;
    int i = y * W + x;
    primal_at(u1 + base, u2 + base, p11 + base, p12 + base, p21 + base, p22 + base, i1wx[base + i],
              i1wy[base + i], rho_c[base + i], inv_grad[base + i], i, x, y, W, lt, theta);
}

extern "C" __global__ void update_p(const float* __restrict__ u1, const float* __restrict__ u2,
                         float* __restrict__ p11, float* __restrict__ p12,
                         float* __restrict__ p21, float* __restrict__ p22, float taut, int H, int W)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= W || y >= H) return;
    size_t base = (size_t)blockIdx.z * H * W;
    dual_at(u1 + base, u2 + base, p11 + base, p12 + base, p21 + base, p22 + base, y * W + x, x, y, H, W, taut);
}

// All `iterations` primal-dual steps of one warp for one pair (blockIdx.x), the level's u and p held in
// shared memory (6 floats per pixel: H*W <= SMEM_LEVEL_PIXELS in flow_cuda.py). Small pyramid levels are
// launch-bound on the two-kernel path (2 launches per iteration); here a warp is one launch. Same steps,
// same Jacobi order (all primal, barrier, all dual, barrier), so the same numbers.
extern "C" __global__ void __launch_bounds__(1024) iterate_level_smem(
    float* __restrict__ u1g, float* __restrict__ u2g, float* __restrict__ p11g, float* __restrict__ p12g,
    float* __restrict__ p21g, float* __restrict__ p22g, const float* __restrict__ i1wx,
    const float* __restrict__ i1wy, const float* __restrict__ rho_c, const float* __restrict__ inv_grad,
    float lt, float theta, float taut, int H, int W, int iterations)
{
    extern __shared__ float level[];
    int n = H * W;
    float* u1 = level;
    float* u2 = level + n;
    float* p11 = level + 2 * n;
    float* p12 = level + 3 * n;
    float* p21 = level + 4 * n;
    float* p22 = level + 5 * n;
    size_t base = (size_t)blockIdx.x * n;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        u1[i] = u1g[base + i];
        u2[i] = u2g[base + i];
        p11[i] = p11g[base + i];
        p12[i] = p12g[base + i];
        p21[i] = p21g[base + i];
        p22[i] = p22g[base + i];
    }
    __syncthreads();
    for (int it = 0; it < iterations; ++it) {
        for (int i = threadIdx.x; i < n; i += blockDim.x)
            primal_at(u1, u2, p11, p12, p21, p22, i1wx[base + i], i1wy[base + i], rho_c[base + i],
                      inv_grad[base + i], i, i % W, i / W, W, lt, theta);
        __syncthreads();
        for (int i = threadIdx.x; i < n; i += blockDim.x)
            dual_at(u1, u2, p11, p12, p21, p22, i, i % W, i / W, H, W, taut);
        __syncthreads();
    }
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        u1g[base + i] = u1[i];
        u2g[base + i] = u2[i];
        p11g[base + i] = p11[i];
        p12g[base + i] = p12[i];
        p21g[base + i] = p21[i];
        p22g[base + i] = p22[i];
    }
}

// Exact median of a KxK window (K = 3 or 5), borders replicated: partial selection sort on registers
// with compile-time indices (no local memory).
template <int K>
__device__ __forceinline__ float median_window(const float* __restrict__ img, int x, int y, int H, int W)
{
    constexpr int N = K * K;
    constexpr int R = K / 2;
    float v[N];
#pragma unroll
    for (int dy = 0; dy < K; ++dy) {
        const float* row = img + (size_t)clampi(y + dy - R, 0, H - 1) * W;
#pragma unroll
        for (int dx = 0; dx < K; ++dx) v[dy * K + dx] = row[clampi(x + dx - R, 0, W - 1)];
    }
#pragma unroll
    for (int a = 0; a <= N / 2; ++a) {
#pragma unroll
        for (int b = a + 1; b < N; ++b) {
            float lo = fminf(v[a], v[b]);
            float hi = fmaxf(v[a], v[b]);
            v[a] = lo;
            v[b] = hi;
        }
    }
    return v[N / 2];
}

extern "C" __global__ void median5(const float* __restrict__ src, float* __restrict__ dst, int H, int W)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= W || y >= H) return;
    size_t base = (size_t)blockIdx.z * H * W;
    dst[base + (size_t)y * W + x] = median_window<5>(src + base, x, y, H, W);
}

extern "C" __global__ void median3(const float* __restrict__ src, float* __restrict__ dst, int H, int W)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= W || y >= H) return;
    size_t base = (size_t)blockIdx.z * H * W;
    dst[base + (size_t)y * W + x] = median_window<3>(src + base, x, y, H, W);
}

// np.gradient's rule: central differences inside, one-sided on the borders (flow._central_difference).
__device__ __forceinline__ float central_x(const float* c, int x, int W)
{
    if (x == 0) return c[1] - c[0];
    if (x == W - 1) return c[W - 1] - c[W - 2];
    return (c[x + 1] - c[x - 1]) * 0.5f;
}

__device__ __forceinline__ float central_y(const float* c, int y, int H, int W)
{
    if (y == 0) return c[W] - c[0];
    if (y == H - 1) return c[(size_t)(H - 1) * W] - c[(size_t)(H - 2) * W];
    return (c[(size_t)(y + 1) * W] - c[(size_t)(y - 1) * W]) * 0.5f;
}

// Optical strain magnitude sqrt(ux^2 + vy^2 + 0.5 (uy + vx)^2) (flow.optical_strain).
extern "C" __global__ void optical_strain(const float* __restrict__ u1, const float* __restrict__ u2,
                               float* __restrict__ strain, int H, int W)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= W || y >= H) return;
    size_t base = (size_t)blockIdx.z * H * W;
    const float* u = u1 + base;
    const float* v = u2 + base;
    float ux = central_x(u + (size_t)y * W, x, W);
    float vx = central_x(v + (size_t)y * W, x, W);
    float uy = central_y(u + x, y, H, W);
    float vy = central_y(v + x, y, H, W);
    float s = uy + vx;
    strain[base + (size_t)y * W + x] = sqrtf((ux * ux + vy * vy) + 0.5f * (s * s));
}

// Interleaved (u, v) flow for the host copy: out[b][y][x][2].
extern "C" __global__ void interleave_flow(const float* __restrict__ u1, const float* __restrict__ u2,
                                float* __restrict__ out, int H, int W)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= W || y >= H) return;
    size_t i = (size_t)blockIdx.z * H * W + (size_t)y * W + x;
    out[2 * i] = u1[i];
    out[2 * i + 1] = u2[i];
}

// The recognition input: one block per (channel, pair); each thread makes output pixels by area
// resampling (rows first, then columns, taps in order: flow.resize_area), then the block finds the
// channel's min and max and writes rint(255 (x - lo) / (hi - lo)) / 255 (flow.quantise_minmax).
// Channels: 0 = u, 1 = v, 2 = strain. out is [pair][3][S][S]. blockDim.x must be 1024 (S*S <= 1024*4).
#define MAX_OUT_PER_THREAD 4
extern "C" __global__ void __launch_bounds__(1024) resize_normalise(
    const float* __restrict__ u1, const float* __restrict__ u2, const float* __restrict__ strain,
    float* __restrict__ out, int H, int W, int S,
    const int* __restrict__ fy, const float* __restrict__ wy, int ky,
    const int* __restrict__ fx, const float* __restrict__ wx, int kx)
{
    __shared__ float smin[32];
    __shared__ float smax[32];
    __shared__ float bounds[2];
    int channel = blockIdx.x;
    size_t base = (size_t)blockIdx.z * H * W;
    const float* c = (channel == 0 ? u1 : (channel == 1 ? u2 : strain)) + base;
    int n = S * S;
    float vals[MAX_OUT_PER_THREAD];
    float lo = INFINITY, hi = -INFINITY;
#pragma unroll
    for (int k = 0; k < MAX_OUT_PER_THREAD; ++k) {
        int o = threadIdx.x + k * blockDim.x;
        vals[k] = 0.0f;
        if (o < n) {
            int j = o / S, i = o % S;
            float acc = 0.0f;
            for (int t2 = 0; t2 < kx; ++t2) {
                int col = min(fx[i] + t2, W - 1);
                float r = 0.0f;
                for (int t = 0; t < ky; ++t) r = r + wy[j * ky + t] * c[(size_t)min(fy[j] + t, H - 1) * W + col];
                acc = acc + wx[i * kx + t2] * r;
            }
            vals[k] = acc;
            lo = fminf(lo, acc);
            hi = fmaxf(hi, acc);
        }
    }
    for (int off = 16; off > 0; off >>= 1) {
        lo = fminf(lo, __shfl_xor_sync(0xffffffffu, lo, off));
        hi = fmaxf(hi, __shfl_xor_sync(0xffffffffu, hi, off));
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) { smin[warp] = lo; smax[warp] = hi; }
    __syncthreads();
    if (warp == 0) {
        int nwarps = blockDim.x >> 5;
        lo = lane < nwarps ? smin[lane] : INFINITY;
        hi = lane < nwarps ? smax[lane] : -INFINITY;
        for (int off = 16; off > 0; off >>= 1) {
            lo = fminf(lo, __shfl_xor_sync(0xffffffffu, lo, off));
            hi = fmaxf(hi, __shfl_xor_sync(0xffffffffu, hi, off));
        }
        if (lane == 0) { bounds[0] = lo; bounds[1] = hi; }
    }
    __syncthreads();
    lo = bounds[0];
    hi = bounds[1];
    float* dst = out + ((size_t)blockIdx.z * 3 + channel) * n;
#pragma unroll
    for (int k = 0; k < MAX_OUT_PER_THREAD; ++k) {
        int o = threadIdx.x + k * blockDim.x;
        if (o < n) dst[o] = hi > lo ? rintf(((vals[k] - lo) * 255.0f) / (hi - lo)) / 255.0f : 0.0f;
    }
}

