// The recurrence of an LSTM layer, for a whole batch of sequences, as two CPU ops.
//
// LstmSequence runs the time loop forward: the input projection (x @ W + b) arrives
// precomputed for every step, so each step is one small matrix product (h @ R) and the
// gates' element-wise arithmetic. LstmSequenceGrad runs it backward and returns the
// gradient of the pre-activations; the weights' gradients are large matrix products the
// caller takes afterwards. Gates are in Keras's order: input, forget, cell, output.

#include "Eigen/Core"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace {

using tensorflow::DEVICE_CPU;
using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::TensorShape;
using tensorflow::shape_inference::InferenceContext;
using tensorflow::shape_inference::ShapeHandle;

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Map = Eigen::Map<Matrix>;
using ConstMap = Eigen::Map<const Matrix>;

// Rows [t * batch, (t + 1) * batch) of a [time, batch, width] tensor, as a matrix.
ConstMap At(const Tensor& t, int64_t step, int64_t batch, int64_t width) {
  return ConstMap(t.flat<float>().data() + step * batch * width, batch, width);
}
Map At(Tensor* t, int64_t step, int64_t batch, int64_t width) {
  return Map(t->flat<float>().data() + step * batch * width, batch, width);
}

class LstmSequenceOp : public OpKernel {
 public:
  explicit LstmSequenceOp(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& projected = context->input(0);  // [time, batch, 4 * units]
    const Tensor& recurrent = context->input(1);  // [units, 4 * units]
    OP_REQUIRES(context, projected.dims() == 3 && recurrent.dims() == 2 &&
                             recurrent.dim_size(1) == 4 * recurrent.dim_size(0) &&
                             projected.dim_size(2) == recurrent.dim_size(1),
                tensorflow::errors::InvalidArgument("LstmSequence: shapes do not match"));
    const int64_t steps = projected.dim_size(0), batch = projected.dim_size(1);
    const int64_t units = recurrent.dim_size(0), gates = 4 * units;
    Tensor *states, *cells, *activations;
    OP_REQUIRES_OK(context, context->allocate_output(0, TensorShape({steps, batch, units}), &states));
    OP_REQUIRES_OK(context, context->allocate_output(1, TensorShape({steps, batch, units}), &cells));
    OP_REQUIRES_OK(context, context->allocate_output(2, TensorShape({steps, batch, gates}), &activations));
    ConstMap r(recurrent.flat<float>().data(), units, gates);
    Matrix h = Matrix::Zero(batch, units), c = Matrix::Zero(batch, units);
    for (int64_t t = 0; t < steps; ++t) {
      Map a = At(activations, t, batch, gates);
      a = At(projected, t, batch, gates);  // pre-activations, turned into the gates in place
      a.noalias() += h * r;
      auto z = a.array();
      z.leftCols(2 * units) = z.leftCols(2 * units).logistic();
      z.middleCols(2 * units, units) = z.middleCols(2 * units, units).tanh();
      z.rightCols(units) = z.rightCols(units).logistic();
      c.array() = z.middleCols(units, units) * c.array() + z.leftCols(units) * z.middleCols(2 * units, units);
      h.array() = z.rightCols(units) * c.array().tanh();
      At(cells, t, batch, units) = c;
      At(states, t, batch, units) = h;
    }
  }
};

class LstmSequenceGradOp : public OpKernel {
 public:
  explicit LstmSequenceGradOp(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& d_states = context->input(0);     // [time, batch, units]
    const Tensor& cells = context->input(1);        // [time, batch, units]
    const Tensor& activations = context->input(2);  // [time, batch, 4 * units]
    const Tensor& recurrent = context->input(3);    // [units, 4 * units]
    OP_REQUIRES(context, d_states.shape() == cells.shape() && activations.dims() == 3 &&
                             activations.dim_size(2) == recurrent.dim_size(1) &&
                             recurrent.dim_size(0) == d_states.dim_size(2),
                tensorflow::errors::InvalidArgument("LstmSequenceGrad: shapes do not match"));
    const int64_t steps = d_states.dim_size(0), batch = d_states.dim_size(1);
    const int64_t units = recurrent.dim_size(0), gates = 4 * units;
    Tensor* d_projected;
    OP_REQUIRES_OK(context, context->allocate_output(0, activations.shape(), &d_projected));
    ConstMap r(recurrent.flat<float>().data(), units, gates);
    Matrix d_h = Matrix::Zero(batch, units), d_c = Matrix::Zero(batch, units);
    Matrix tanh_c(batch, units), zeros = Matrix::Zero(batch, units);
    for (int64_t t = steps - 1; t >= 0; --t) {
      ConstMap a_t = At(activations, t, batch, gates), c_t = At(cells, t, batch, units);
      ConstMap c_before(t > 0 ? cells.flat<float>().data() + (t - 1) * batch * units : zeros.data(), batch, units);
      Map d_z = At(d_projected, t, batch, gates);
      auto a = a_t.array();
      auto i = a.leftCols(units), f = a.middleCols(units, units);
      auto g = a.middleCols(2 * units, units), o = a.rightCols(units);
      d_h += At(d_states, t, batch, units);
      tanh_c.array() = c_t.array().tanh();
      d_c.array() += d_h.array() * o * (1 - tanh_c.array().square());
      auto dz = d_z.array();
      dz.leftCols(units) = d_c.array() * g * i * (1 - i);
      dz.middleCols(units, units) = d_c.array() * c_before.array() * f * (1 - f);
      dz.middleCols(2 * units, units) = d_c.array() * i * (1 - g.square());
      dz.rightCols(units) = d_h.array() * tanh_c.array() * o * (1 - o);
      d_c.array() *= f;
      d_h.noalias() = d_z * r.transpose();
    }
  }
};

tensorflow::Status SameAsInput(InferenceContext* c, int input, int output) {
  c->set_output(output, c->input(input));
  return tensorflow::OkStatus();
}

}  // namespace

REGISTER_OP("LstmSequence")
    .Input("projected: float")
    .Input("recurrent: float")
    .Output("states: float")
    .Output("cells: float")
    .Output("activations: float")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle projected = c->input(0), states;
      TF_RETURN_IF_ERROR(c->ReplaceDim(projected, 2, c->Dim(c->input(1), 0), &states));
      c->set_output(0, states);
      c->set_output(1, states);
      c->set_output(2, projected);
      return tensorflow::OkStatus();
    });

REGISTER_OP("LstmSequenceGrad")
    .Input("d_states: float")
    .Input("cells: float")
    .Input("activations: float")
    .Input("recurrent: float")
    .Output("d_projected: float")
    .SetShapeFn([](InferenceContext* c) { return SameAsInput(c, 2, 0); });

REGISTER_KERNEL_BUILDER(Name("LstmSequence").Device(DEVICE_CPU), LstmSequenceOp);
REGISTER_KERNEL_BUILDER(Name("LstmSequenceGrad").Device(DEVICE_CPU), LstmSequenceGradOp);
