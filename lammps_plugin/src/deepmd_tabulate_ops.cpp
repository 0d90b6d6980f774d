// deepmd-kit's tabulated embedding ops (deepmd::tabulate_fusion_*), written for ionmd.
//
// `dp --pt compress` replaces each embedding net g(s) of a DeePMD descriptor by a
// table of quintic polynomials, one per output channel and per table row, and the
// compressed model calls these ops instead of the net. The schemas are deepmd-kit
// 3.2.0's (tests/fixtures/deepmd/deepmd_op_schemas.txt); the numbers follow its
// definition: value and slope at the end points continue the table linearly outside
// its range, and in a sorted se_a/se_atten neighbour list the padding tail (entries
// equal to the last one with a zero direction) is folded into its first entry.
//
// Each op is an autograd function: its backward (the first derivative, all that
// forces and virials need) is exact; a second derivative (double backward, e.g. force
// training through a compressed model) raises a clear error.
//
// Table layout (deepmd's): table is [rows, 6 * L], row r holding for each output k the
// coefficients c0..c5 of c0 + c1 t + ... + c5 t^5 in t = x - (start of row r).
// table_info = [lower, upper, max, stride0, stride1, ...]: rows cover [lower, upper)
// with step stride0, then [upper, max) with step stride1; the se_t family (inputs are
// cosines, symmetric about 0) also has rows over [-max, lower) with step stride1.
#include "deepmd_ops.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <utility>
#include <vector>

namespace ionmd {

namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// ---------------------------------------------------------------- table lookup

template <typename T> struct TableRange {
  T min, lower, upper, max, stride0, stride1;
};

// Where an input falls: the row, the offset t in it, and how far the input lies
// beyond the table's end point (0 inside the table).
template <typename T> struct Spot {
  int64_t row;
  T t;
  T beyond;
};

// The same floating-point operations as deepmd-kit, so that rows and offsets agree
// to the last bit (a row boundary is a discontinuity of the table's third derivative).
template <typename T> inline Spot<T> locate(const TableRange<T> &g, T x)
{
  const int n_low = int((g.lower - g.min) / g.stride1);
  const int n_mid = n_low + int((g.upper - g.lower) / g.stride0);
  if (x < g.min) return {0, T(0), x - g.min};
  if (x < g.lower) {
    const int r = int((x - g.min) / g.stride1);
    return {r, x - (r * g.stride1 + g.min), T(0)};
  }
  if (x < g.upper) {
    const int r = n_low + int((x - g.lower) / g.stride0);
    return {r, x - ((r - n_low) * g.stride0 + g.lower), T(0)};
  }
  if (x < g.max) {
    const int r = n_mid + int((x - g.upper) / g.stride1);
    return {r, x - ((r - n_mid) * g.stride1 + g.upper), T(0)};
  }
  // At or above max: the last row, evaluated at max, continued with its slope there.
  const int r = n_mid + int((std::nextafter(g.max, g.min) - g.upper) / g.stride1);
  return {r, g.max - ((r - n_mid) * g.stride1 + g.upper), x - g.max};
}

// Value (continued linearly by `beyond`) and slope of one channel's quintic.
template <typename T> inline void quintic(const T *c, const Spot<T> &s, T &value, T &slope)
{
  const T t = s.t;
  slope = c[1] + (T(2) * c[2] + (T(3) * c[3] + (T(4) * c[4] + T(5) * c[5] * t) * t) * t) * t;
  value = c[0] + (c[1] + (c[2] + (c[3] + (c[4] + c[5] * t) * t) * t) * t) * t + slope * s.beyond;
}

// ---------------------------------------------------------------- argument checks

void check_table(const char *op, const Tensor &table, const Tensor &info, int64_t L)
{
  TORCH_CHECK(table.device().is_cpu(), "deepmd::", op,
              ": ionmd's implementation runs on the CPU only, but the table is on ",
              table.device());
  TORCH_CHECK(table.scalar_type() == torch::kFloat64 || table.scalar_type() == torch::kFloat32,
              "deepmd::", op, ": the table must be float32 or float64, got ", table.scalar_type());
  TORCH_CHECK(table.dim() == 2, "deepmd::", op, ": the table must be 2-D, got ", table.sizes());
  TORCH_CHECK(L > 0 && table.size(1) == 6 * L, "deepmd::", op, ": the table has ",
              table.size(1), " columns, expected 6 x last_layer_size = 6 x ", L);
  TORCH_CHECK(info.numel() >= 5, "deepmd::", op,
              ": table_info needs [lower, upper, max, stride0, stride1], got ", info.numel(),
              " values");
}

void check_input(const char *op, const char *name, const Tensor &t, const Tensor &table,
                 int64_t numel)
{
  TORCH_CHECK(t.device() == table.device(), "deepmd::", op, ": ", name, " is on ", t.device(),
              " but the table is on ", table.device());
  TORCH_CHECK(t.scalar_type() == table.scalar_type(), "deepmd::", op, ": ", name, " is ",
              t.scalar_type(), " but the table is ", table.scalar_type());
  TORCH_CHECK(t.numel() == numel, "deepmd::", op, ": ", name, " has ", t.numel(),
              " elements (shape ", t.sizes(), "), expected ", numel);
}

// table_info as deepmd-kit reads it: in the table's dtype.
template <typename T> TableRange<T> range_of(const Tensor &info, bool symmetric)
{
  Tensor v = info.to(torch::kCPU, c10::CppTypeToScalarType<T>::value).contiguous();
  const T *p = v.data_ptr<T>();
  return {symmetric ? T(-p[2]) : p[0], p[0], p[1], p[2], p[3], p[4]};
}

// ---------------------------------------------------------------- se_a / se_atten
//
// descriptor[i, m, k] = sum_j g_k(em_x[i, j]) (1 + two[i, j, k]) em[i, j, m]
// (the factor (1 + two) only for se_atten), i atoms, j neighbours, m < nd, k < L.

struct SeAShape {
  int64_t nloc, nnei, nd, L;
};

// Value of one channel's quintic inside the table (no slope needed).
template <typename T> inline T quintic_value(const T *c, T t)
{
  return c[0] + (c[1] + (c[2] + (c[3] + (c[4] + c[5] * t) * t) * t) * t) * t;
}

// Values and slopes of all L channels at one spot, in contiguous arrays.
template <typename T>
inline void channels_at(const T *row, const Spot<T> &s, int64_t L, T *value, T *slope)
{
  for (int64_t k = 0; k < L; ++k) quintic(row + 6 * k, s, value[k], slope[k]);
}

template <typename T, int ND>
void se_a_forward(const TableRange<T> &g, const T *table, const T *em_x, const T *em,
                  const T *two, const SeAShape &n, bool is_sorted, T *out)
{
  const int64_t L = n.L, nnei = n.nnei;
  at::parallel_for(0, n.nloc, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> v(L), slope(L);
    for (int64_t i = begin; i < end; ++i) {
      T *o = out + i * ND * L;
      std::fill(o, o + ND * L, T(0));
      if (nnei == 0) continue;
      const T x_last = em_x[i * nnei + nnei - 1];
      for (int64_t j = 0; j < nnei; ++j) {
        const T *e = em + (i * nnei + j) * ND;
        const T x = em_x[i * nnei + j];
        const bool tail = is_sorted && x == x_last && e[1] == 0 && e[2] == 0 && e[3] == 0;
        const T w = tail ? T(nnei - j) : T(1);
        const Spot<T> s = locate(g, x);
        const T *row = table + s.row * L * 6;
        if (s.beyond == T(0)) {
          for (int64_t k = 0; k < L; ++k) v[k] = quintic_value(row + 6 * k, s.t);
        } else {
          channels_at(row, s, L, v.data(), slope.data());
        }
        if (two) {
          const T *tw = two + (i * nnei + j) * L;
          for (int64_t k = 0; k < L; ++k) v[k] = v[k] * tw[k] + v[k];
        }
        for (int m = 0; m < ND; ++m) {
          const T we = w * e[m];
          T *om = o + m * L;
          for (int64_t k = 0; k < L; ++k) om[k] += v[k] * we;
        }
        if (tail) break;
      }
    }
  });
}

// Gradients of sum(dy * descriptor) with respect to em_x, em and two.
template <typename T, int ND>
void se_a_backward(const TableRange<T> &g, const T *table, const T *em_x, const T *em,
                   const T *two, const T *dy, const SeAShape &n, bool is_sorted, T *d_em_x,
                   T *d_em, T *d_two)
{
  const int64_t L = n.L, nnei = n.nnei;
  at::parallel_for(0, n.nloc, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> v(L), slope(L), dot(L);
    for (int64_t i = begin; i < end; ++i) {
      if (nnei == 0) continue;
      const T *dyi = dy + i * ND * L;
      const T x_last = em_x[i * nnei + nnei - 1];
      for (int64_t j = 0; j < nnei; ++j) {
        const int64_t ij = i * nnei + j;
        const T *e = em + ij * ND;
        const T x = em_x[ij];
        const bool tail = is_sorted && x == x_last && e[1] == 0 && e[2] == 0 && e[3] == 0;
        const T w = tail ? T(nnei - j) : T(1);
        const Spot<T> s = locate(g, x);
        channels_at(table + s.row * L * 6, s, L, v.data(), slope.data());
        // dot[k] = sum_m em[m] dy[m, k]
        std::fill(dot.begin(), dot.end(), T(0));
        for (int m = 0; m < ND; ++m) {
          const T em_m = e[m];
          const T *dym = dyi + m * L;
          for (int64_t k = 0; k < L; ++k) dot[k] += em_m * dym[k];
        }
        if (two) {
          const T *tw = two + ij * L;
          T *dt = d_two + ij * L;
          for (int64_t k = 0; k < L; ++k) {
            dt[k] = w * v[k] * dot[k];
            v[k] = v[k] * tw[k] + v[k];
            slope[k] = slope[k] * tw[k] + slope[k];
          }
        }
        T dx = T(0);
        for (int64_t k = 0; k < L; ++k) dx += slope[k] * dot[k];
        d_em_x[ij] = w * dx;
        T *de = d_em + ij * ND;
        for (int m = 0; m < ND; ++m) {
          const T *dym = dyi + m * L;
          T acc = T(0);
          for (int64_t k = 0; k < L; ++k) acc += v[k] * dym[k];
          de[m] = w * acc;
        }
        if (tail) break;
      }
    }
  });
}

template <typename F> void dispatch_nd(const char *op, int64_t nd, F &&f)
{
  switch (nd) {
    case 4: f(std::integral_constant<int, 4>{}); return;
    case 9: f(std::integral_constant<int, 9>{}); return;
    case 16: f(std::integral_constant<int, 16>{}); return;
    case 25: f(std::integral_constant<int, 25>{}); return;
    default:
      TORCH_CHECK(false, "deepmd::", op, ": the environment matrix has ", nd,
                  " components per neighbour, expected 4, 9, 16 or 25");
  }
}

SeAShape se_a_shape(const char *op, const Tensor &table, const Tensor &info, const Tensor &em_x,
                    const Tensor &em, const Tensor &two, int64_t L)
{
  check_table(op, table, info, L);
  TORCH_CHECK(em.dim() == 3, "deepmd::", op, ": em must be [nloc, nnei, 4], got ", em.sizes());
  SeAShape n{em.size(0), em.size(1), em.size(2), L};
  check_input(op, "em", em, table, em.numel());
  check_input(op, "em_x", em_x, table, n.nloc * n.nnei);
  if (two.defined()) check_input(op, "two_embed", two, table, n.nloc * n.nnei * L);
  return n;
}

Tensor se_a_descriptor(const char *op, const Tensor &table_in, const Tensor &info,
                       const Tensor &em_x_in, const Tensor &em_in, const Tensor &two_in,
                       int64_t L, bool is_sorted)
{
  const SeAShape n = se_a_shape(op, table_in, info, em_x_in, em_in, two_in, L);
  auto table = table_in.contiguous(), em_x = em_x_in.contiguous(), em = em_in.contiguous();
  Tensor two = two_in.defined() ? two_in.contiguous() : Tensor();
  auto out = torch::empty({n.nloc, n.nd, L}, table.options());
  AT_DISPATCH_FLOATING_TYPES(table.scalar_type(), "tabulate_fusion_se_a", [&] {
    const auto g = range_of<scalar_t>(info, false);
    dispatch_nd(op, n.nd, [&](auto nd) {
      se_a_forward<scalar_t, decltype(nd)::value>(
          g, table.data_ptr<scalar_t>(), em_x.data_ptr<scalar_t>(), em.data_ptr<scalar_t>(),
          two.defined() ? two.data_ptr<scalar_t>() : nullptr, n, is_sorted,
          out.data_ptr<scalar_t>());
    });
  });
  return out;
}

// [d_em_x, d_em, d_two] (d_two is empty without two).
variable_list se_a_gradients(const char *op, const Tensor &table_in, const Tensor &info,
                             const Tensor &em_x_in, const Tensor &em_in, const Tensor &two_in,
                             const Tensor &dy_in, int64_t L, bool is_sorted)
{
  const SeAShape n = se_a_shape(op, table_in, info, em_x_in, em_in, two_in, L);
  check_input(op, "the gradient of the descriptor", dy_in, table_in, n.nloc * n.nd * L);
  auto table = table_in.contiguous(), em_x = em_x_in.contiguous(), em = em_in.contiguous();
  auto dy = dy_in.contiguous();
  Tensor two = two_in.defined() ? two_in.contiguous() : Tensor();
  auto d_em_x = torch::zeros_like(em_x), d_em = torch::zeros_like(em);
  auto d_two = two.defined() ? torch::zeros_like(two) : torch::empty({0}, table.options());
  AT_DISPATCH_FLOATING_TYPES(table.scalar_type(), "tabulate_fusion_se_a_grad", [&] {
    const auto g = range_of<scalar_t>(info, false);
    dispatch_nd(op, n.nd, [&](auto nd) {
      se_a_backward<scalar_t, decltype(nd)::value>(
          g, table.data_ptr<scalar_t>(), em_x.data_ptr<scalar_t>(), em.data_ptr<scalar_t>(),
          two.defined() ? two.data_ptr<scalar_t>() : nullptr, dy.data_ptr<scalar_t>(), n,
          is_sorted, d_em_x.data_ptr<scalar_t>(), d_em.data_ptr<scalar_t>(),
          two.defined() ? d_two.data_ptr<scalar_t>() : nullptr);
    });
  });
  return {d_em_x, d_em, d_two};
}

// ---------------------------------------------------------------- se_t, se_t_tebd, se_r
//
// se_t:      descriptor[i, k]          = sum_{j,l} g_k(x[i,j,l]) x[i,j,l]   (x = em_x)
// se_t_tebd: descriptor[i, j, l, k]    = g_k(x[i,j,l])
// se_r:      descriptor[i, j, k]       = g_k(em[i,j])
// Each is a function of one scalar per entry; `Channels` evaluates all k at once.

template <typename T> struct Channels {
  const TableRange<T> &g;
  const T *table;
  int64_t L;
  // value[k], slope[k] of every channel at x
  void eval(T x, T *value, T *slope) const
  {
    const Spot<T> s = locate(g, x);
    const T *row = table + s.row * L * 6;
    for (int64_t k = 0; k < L; ++k) quintic(row + 6 * k, s, value[k], slope[k]);
  }
};

enum class Scalar { SE_T, SE_T_TEBD, SE_R };

const char *name_of(Scalar kind)
{
  switch (kind) {
    case Scalar::SE_T: return "tabulate_fusion_se_t";
    case Scalar::SE_T_TEBD: return "tabulate_fusion_se_t_tebd";
    default: return "tabulate_fusion_se_r";
  }
}

// Rows (atoms) and entries per row of the scalar input.
std::pair<int64_t, int64_t> scalar_shape(Scalar kind, const Tensor &table, const Tensor &info,
                                         const Tensor &x, const Tensor &em, int64_t L)
{
  const char *op = name_of(kind);
  check_table(op, table, info, L);
  if (kind == Scalar::SE_R) {
    TORCH_CHECK(em.dim() == 2, "deepmd::", op, ": em must be [nloc, nnei], got ", em.sizes());
  } else {
    TORCH_CHECK(em.dim() == 3, "deepmd::", op, ": em must be [nloc, nnei_i, nnei_j], got ",
                em.sizes());
  }
  check_input(op, "em", em, table, em.numel());
  if (kind != Scalar::SE_R) check_input(op, "em_x", x, table, em.numel());
  const int64_t nloc = em.size(0);
  return {nloc, nloc == 0 ? 0 : em.numel() / nloc};
}

std::vector<int64_t> scalar_out_sizes(Scalar kind, const Tensor &em, int64_t L)
{
  if (kind == Scalar::SE_T) return {em.size(0), L};
  auto s = em.sizes().vec();
  s.push_back(L);
  return s;
}

Tensor scalar_descriptor(Scalar kind, const Tensor &table_in, const Tensor &info,
                         const Tensor &x_in, const Tensor &em, int64_t L)
{
  const auto [nloc, per] = scalar_shape(kind, table_in, info, x_in, em, L);
  auto table = table_in.contiguous(), x = x_in.contiguous();
  auto out = torch::empty(scalar_out_sizes(kind, em, L), table.options());
  AT_DISPATCH_FLOATING_TYPES(table.scalar_type(), "tabulate_fusion_scalar", [&] {
    const auto g = range_of<scalar_t>(info, kind != Scalar::SE_R);
    const Channels<scalar_t> ch{g, table.data_ptr<scalar_t>(), L};
    const scalar_t *px = x.data_ptr<scalar_t>();
    scalar_t *po = out.data_ptr<scalar_t>();
    at::parallel_for(0, nloc, 1, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> v(L), slope(L);
      for (int64_t i = begin; i < end; ++i) {
        if (kind == Scalar::SE_T) {
          scalar_t *o = po + i * L;
          std::fill(o, o + L, scalar_t(0));
          for (int64_t e = 0; e < per; ++e) {
            const scalar_t xe = px[i * per + e];
            ch.eval(xe, v.data(), slope.data());
            for (int64_t k = 0; k < L; ++k) o[k] += v[k] * xe;
          }
        } else {
          for (int64_t e = 0; e < per; ++e)
            ch.eval(px[i * per + e], po + (i * per + e) * L, slope.data());
        }
      }
    });
  });
  return out;
}

// Gradients [d_em_x, d_em] for se_t; [d_x] for se_t_tebd (d em_x) and se_r (d em).
variable_list scalar_gradients(Scalar kind, const Tensor &table_in, const Tensor &info,
                               const Tensor &x_in, const Tensor &em, const Tensor &dy_in,
                               int64_t L)
{
  const auto [nloc, per] = scalar_shape(kind, table_in, info, x_in, em, L);
  const int64_t dy_numel = kind == Scalar::SE_T ? nloc * L : em.numel() * L;
  check_input(name_of(kind), "the gradient of the descriptor", dy_in, table_in, dy_numel);
  auto table = table_in.contiguous(), x = x_in.contiguous(), dy = dy_in.contiguous();
  auto d_x = torch::zeros(x.sizes(), table.options());
  auto d_em = kind == Scalar::SE_T ? torch::zeros(em.sizes(), table.options()) : Tensor();
  AT_DISPATCH_FLOATING_TYPES(table.scalar_type(), "tabulate_fusion_scalar_grad", [&] {
    const auto g = range_of<scalar_t>(info, kind != Scalar::SE_R);
    const Channels<scalar_t> ch{g, table.data_ptr<scalar_t>(), L};
    const scalar_t *px = x.data_ptr<scalar_t>(), *pdy = dy.data_ptr<scalar_t>();
    scalar_t *pdx = d_x.data_ptr<scalar_t>();
    scalar_t *pdem = d_em.defined() ? d_em.data_ptr<scalar_t>() : nullptr;
    at::parallel_for(0, nloc, 1, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> v(L), slope(L);
      for (int64_t i = begin; i < end; ++i) {
        for (int64_t e = 0; e < per; ++e) {
          const int64_t ie = i * per + e;
          const scalar_t xe = px[ie];
          ch.eval(xe, v.data(), slope.data());
          // se_t: the row's dy; the others: this entry's dy
          const scalar_t *d = kind == Scalar::SE_T ? pdy + i * L : pdy + ie * L;
          scalar_t sx = 0, sv = 0;
          for (int64_t k = 0; k < L; ++k) {
            sx += slope[k] * d[k];
            sv += v[k] * d[k];
          }
          if (kind == Scalar::SE_T) {
            pdx[ie] = sx * xe;    // d/d em_x of g(em_x) em_x, the g' part
            pdem[ie] = sv;        // ... the em_x factor, passed as em as deepmd does
          } else {
            pdx[ie] = sx;
          }
        }
      }
    });
  });
  if (kind == Scalar::SE_T) return {d_x, d_em};
  return {d_x};
}

// ---------------------------------------------------------------- autograd

[[noreturn]] void refuse_double_backward(const char *op)
{
  TORCH_CHECK(false, "deepmd::", op,
              ": second derivatives (double backward) are not implemented in ionmd's "
              "deepmd ops; energies, forces and virials need only first derivatives "
              "(evaluate the model in eval mode, or train on the uncompressed model)");
}

// The gradients as a function of dy, so that a second derivative can be refused clearly.
class SeAGrad : public torch::autograd::Function<SeAGrad> {
 public:
  static variable_list forward(AutogradContext *, const Tensor &table, const Tensor &info,
                               const Tensor &em_x, const Tensor &em, const Tensor &two,
                               const Tensor &dy, int64_t L, bool is_sorted)
  {
    return se_a_gradients(two.numel() ? "tabulate_fusion_se_atten" : "tabulate_fusion_se_a",
                          table, info, em_x, em, two.numel() ? two : Tensor(), dy, L, is_sorted);
  }
  static variable_list backward(AutogradContext *, variable_list)
  {
    refuse_double_backward("tabulate_fusion_se_a");
  }
};

class SeA : public torch::autograd::Function<SeA> {
 public:
  // `two` is an empty tensor for se_a, two_embed for se_atten.
  static variable_list forward(AutogradContext *ctx, const Tensor &table, const Tensor &info,
                               const Tensor &em_x, const Tensor &em, const Tensor &two,
                               int64_t L, bool is_sorted)
  {
    const char *op = two.numel() ? "tabulate_fusion_se_atten" : "tabulate_fusion_se_a";
    auto out = se_a_descriptor(op, table, info, em_x, em, two.numel() ? two : Tensor(), L,
                               is_sorted);
    ctx->save_for_backward({table, info, em_x, em, two});
    ctx->saved_data["L"] = L;
    ctx->saved_data["is_sorted"] = is_sorted;
    return {out};
  }
  static variable_list backward(AutogradContext *ctx, variable_list grads)
  {
    auto s = ctx->get_saved_variables();
    const int64_t L = ctx->saved_data["L"].toInt();
    Tensor dy = grads[0].defined()
                    ? grads[0]
                    : torch::zeros({s[3].size(0), s[3].size(2), L}, s[0].options());
    auto d = SeAGrad::apply(s[0], s[1], s[2], s[3], s[4], dy, L,
                            ctx->saved_data["is_sorted"].toBool());
    return {Tensor(), Tensor(), d[0], d[1], s[4].numel() ? d[2] : Tensor(), Tensor(), Tensor()};
  }
};

class ScalarGrad : public torch::autograd::Function<ScalarGrad> {
 public:
  static variable_list forward(AutogradContext *, const Tensor &table, const Tensor &info,
                               const Tensor &x, const Tensor &em, const Tensor &dy, int64_t L,
                               int64_t kind)
  {
    return scalar_gradients(static_cast<Scalar>(kind), table, info, x, em, dy, L);
  }
  static variable_list backward(AutogradContext *, variable_list)
  {
    refuse_double_backward("tabulate_fusion_se_r/se_t/se_t_tebd");
  }
};

class ScalarOp : public torch::autograd::Function<ScalarOp> {
 public:
  static variable_list forward(AutogradContext *ctx, const Tensor &table, const Tensor &info,
                               const Tensor &x, const Tensor &em, int64_t L, int64_t kind)
  {
    auto out = scalar_descriptor(static_cast<Scalar>(kind), table, info, x, em, L);
    ctx->save_for_backward({table, info, x, em});
    ctx->saved_data["L"] = L;
    ctx->saved_data["kind"] = kind;
    return {out};
  }
  static variable_list backward(AutogradContext *ctx, variable_list grads)
  {
    auto s = ctx->get_saved_variables();
    const int64_t L = ctx->saved_data["L"].toInt();
    const int64_t kind = ctx->saved_data["kind"].toInt();
    Tensor dy = grads[0].defined()
                    ? grads[0]
                    : torch::zeros(scalar_out_sizes(static_cast<Scalar>(kind), s[3], L),
                                   s[0].options());
    auto d = ScalarGrad::apply(s[0], s[1], s[2], s[3], dy, L, kind);
    // ScalarOp inputs: table, info, x, em, L, kind
    switch (static_cast<Scalar>(kind)) {
      case Scalar::SE_T: return {Tensor(), Tensor(), d[0], d[1], Tensor(), Tensor()};
      case Scalar::SE_T_TEBD: return {Tensor(), Tensor(), d[0], Tensor(), Tensor(), Tensor()};
      default: return {Tensor(), Tensor(), Tensor(), d[0], Tensor(), Tensor()};
    }
  }
};

// ---------------------------------------------------------------- the ops (deepmd's schemas)

using T = const Tensor &;

std::vector<Tensor> tabulate_fusion_se_a(T table, T info, T em_x, T em, int64_t L)
{
  return SeA::apply(table, info, em_x, em, torch::empty({0}, table.options()), L, true);
}

std::vector<Tensor> tabulate_fusion_se_atten(T table, T info, T em_x, T em, T two, int64_t L,
                                             bool is_sorted)
{
  TORCH_CHECK(two.numel() > 0 || em.numel() == 0, "deepmd::tabulate_fusion_se_atten: "
              "two_embed is empty");
  return SeA::apply(table, info, em_x, em, two, L, is_sorted);
}

std::vector<Tensor> tabulate_fusion_se_t(T table, T info, T em_x, T em, int64_t L)
{
  return ScalarOp::apply(table, info, em_x, em, L, static_cast<int64_t>(Scalar::SE_T));
}

std::vector<Tensor> tabulate_fusion_se_t_tebd(T table, T info, T em_x, T em, int64_t L)
{
  return ScalarOp::apply(table, info, em_x, em, L, static_cast<int64_t>(Scalar::SE_T_TEBD));
}

std::vector<Tensor> tabulate_fusion_se_r(T table, T info, T em, int64_t L)
{
  return ScalarOp::apply(table, info, em, em, L, static_cast<int64_t>(Scalar::SE_R));
}

}    // namespace

void define_deepmd_tabulate_ops(torch::Library &m)
{
  m.def("tabulate_fusion_se_a", &tabulate_fusion_se_a);
  m.def("tabulate_fusion_se_atten", &tabulate_fusion_se_atten);
  m.def("tabulate_fusion_se_r", &tabulate_fusion_se_r);
  m.def("tabulate_fusion_se_t", &tabulate_fusion_se_t);
  m.def("tabulate_fusion_se_t_tebd", &tabulate_fusion_se_t_tebd);
}

}    // namespace ionmd
