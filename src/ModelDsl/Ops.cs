namespace Kiln;

/// <summary>
/// The operations a model's <c>Forward</c> and loss methods may use. Every operation is symbolic:
/// the Kiln generator reads calls to them at build time, checks shapes and dtypes, derives gradients
/// and compiles them. Axes may be negative (counted from the end). Binary operations broadcast like
/// NumPy and PyTorch.
/// </summary>
public static class Ops
{
    /// <summary>Matrix product over the last two dimensions; leading (batch) dimensions broadcast.
    /// <c>[..., M, K] @ [..., K, N] → [..., M, N]</c>.</summary>
    public static Tensor MatMul(Tensor a, Tensor b) => throw KilnSymbolicException.Create();

    /// <summary>Elementwise sum with broadcasting.</summary>
    public static Tensor Add(Tensor a, Tensor b) => throw KilnSymbolicException.Create();
    /// <summary>Elementwise difference with broadcasting.</summary>
    public static Tensor Sub(Tensor a, Tensor b) => throw KilnSymbolicException.Create();
    /// <summary>Elementwise product with broadcasting.</summary>
    public static Tensor Mul(Tensor a, Tensor b) => throw KilnSymbolicException.Create();
    /// <summary>Elementwise quotient with broadcasting.</summary>
    public static Tensor Div(Tensor a, Tensor b) => throw KilnSymbolicException.Create();
    /// <summary>Elementwise maximum with broadcasting.</summary>
    public static Tensor Maximum(Tensor a, Tensor b) => throw KilnSymbolicException.Create();
    /// <summary>Elementwise minimum with broadcasting.</summary>
    public static Tensor Minimum(Tensor a, Tensor b) => throw KilnSymbolicException.Create();
    /// <summary>Elementwise power with a constant exponent.</summary>
    public static Tensor Pow(Tensor x, float exponent) => throw KilnSymbolicException.Create();

    /// <summary>Elementwise negation.</summary>
    public static Tensor Neg(Tensor x) => throw KilnSymbolicException.Create();
    /// <summary>Elementwise e^x.</summary>
    public static Tensor Exp(Tensor x) => throw KilnSymbolicException.Create();
    /// <summary>Elementwise natural logarithm.</summary>
    public static Tensor Log(Tensor x) => throw KilnSymbolicException.Create();
    /// <summary>Elementwise square root.</summary>
    public static Tensor Sqrt(Tensor x) => throw KilnSymbolicException.Create();
    /// <summary>Elementwise 1/√x.</summary>
    public static Tensor Rsqrt(Tensor x) => throw KilnSymbolicException.Create();
    /// <summary>Elementwise x².</summary>
    public static Tensor Square(Tensor x) => throw KilnSymbolicException.Create();
    /// <summary>Elementwise |x|.</summary>
    public static Tensor Abs(Tensor x) => throw KilnSymbolicException.Create();
    /// <summary>Elementwise hyperbolic tangent.</summary>
    public static Tensor Tanh(Tensor x) => throw KilnSymbolicException.Create();
    /// <summary>Elementwise sine (computed and stored in fp32).</summary>
    public static Tensor Sin(Tensor x) => throw KilnSymbolicException.Create();
    /// <summary>Elementwise cosine (computed and stored in fp32).</summary>
    public static Tensor Cos(Tensor x) => throw KilnSymbolicException.Create();
    /// <summary>
    /// The sinusoidal position table [<paramref name="length"/>, <paramref name="dim"/>] of the original Transformer:
    /// PE[p, 2i] = sin(p / 10000^(2i/dim)), PE[p, 2i+1] = cos(p / 10000^(2i/dim)). A constant: no parameters, no gradient.
    /// <paramref name="dim"/> must be even.
    /// </summary>
    public static Tensor SinusoidalPositions(int length, int dim) => throw KilnSymbolicException.Create();
    /// <summary>Elementwise max(x, 0).</summary>
    public static Tensor Relu(Tensor x) => throw KilnSymbolicException.Create();
    /// <summary>
    /// Tensor parallelism (Megatron's f): marks where a replicated activation enters column-parallel layers. The
    /// identity forward; in the backward pass the gradient is summed over the tensor-parallel ranks.
    /// </summary>
    public static Tensor TensorReplicate(Tensor x) => throw KilnSymbolicException.Create();
    /// <summary>
    /// Tensor parallelism (Megatron's g): sums the partial results of a row-parallel layer over the tensor-parallel
    /// ranks (an all-reduce); the gradient passes through. The identity on one rank.
    /// </summary>
    public static Tensor TensorReduce(Tensor x) => throw KilnSymbolicException.Create();
    /// <summary>GELU, tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).</summary>
    public static Tensor Gelu(Tensor x) => throw KilnSymbolicException.Create();
    /// <summary>Elementwise logistic sigmoid 1/(1 + e^−x).</summary>
    public static Tensor Sigmoid(Tensor x) => throw KilnSymbolicException.Create();
    /// <summary>Softplus log(1 + eˣ), a smooth ReLU (computed without overflow; its gradient is σ(x)).</summary>
    public static Tensor Softplus(Tensor x) => throw KilnSymbolicException.Create();
    /// <summary>SiLU (swish) x·σ(x), the activation of gated MLPs such as SwiGLU.</summary>
    public static Tensor Silu(Tensor x) => throw KilnSymbolicException.Create();

    /// <summary>Softmax along <paramref name="axis"/> (max-subtracted for stability).</summary>
    public static Tensor Softmax(Tensor x, int axis = -1) => throw KilnSymbolicException.Create();
    /// <summary>Log-softmax along <paramref name="axis"/>.</summary>
    public static Tensor LogSoftmax(Tensor x, int axis = -1) => throw KilnSymbolicException.Create();

    /// <summary>
    /// Fused scaled dot-product attention softmax(q·kᵀ/√d)·v over queries <paramref name="q"/> [B, heads, Tq, d] and keys and
    /// values <paramref name="k"/>, <paramref name="v"/> [B, heads, Tk, d], computed flash-attention style: the Tq×Tk
    /// scores never exist in memory, and the backward recomputes them from each row's saved log-sum-exp. With
    /// <paramref name="causal"/>, query i sees key j when j ≤ i + Tk − Tq (self-attention: itself and the positions before it).
    /// Head sizes up to 128. A query that sees no key gets zeros. No dropout on the probabilities: write the
    /// composition (MatMul, Softmax, Dropout, MatMul) for that.
    /// </summary>
    public static Tensor Attention(Tensor q, Tensor k, Tensor v, bool causal = false) => throw KilnSymbolicException.Create();
    /// <summary>
    /// As <see cref="Attention(Tensor, Tensor, Tensor, bool)"/>, hiding the keys whose <paramref name="keep"/> [B, Tk] is 0
    /// (padding); 1 keeps a key.
    /// </summary>
    public static Tensor Attention(Tensor q, Tensor k, Tensor v, Tensor keep) => throw KilnSymbolicException.Create();

    /// <summary>Sum along <paramref name="axis"/>; the axis is removed unless <paramref name="keepDim"/>.</summary>
    public static Tensor Sum(Tensor x, int axis, bool keepDim = false) => throw KilnSymbolicException.Create();
    /// <summary>Sum of all elements (a scalar).</summary>
    public static Tensor Sum(Tensor x) => throw KilnSymbolicException.Create();
    /// <summary>Mean along <paramref name="axis"/>; the axis is removed unless <paramref name="keepDim"/>.</summary>
    public static Tensor Mean(Tensor x, int axis, bool keepDim = false) => throw KilnSymbolicException.Create();
    /// <summary>Mean of all elements (a scalar).</summary>
    public static Tensor Mean(Tensor x) => throw KilnSymbolicException.Create();
    /// <summary>Maximum along <paramref name="axis"/>; the gradient flows to every element equal to the maximum.</summary>
    public static Tensor Max(Tensor x, int axis, bool keepDim = false) => throw KilnSymbolicException.Create();

    /// <summary>Reshapes to <paramref name="dims"/> (one of them may be −1, inferred). Elements keep their row-major order.</summary>
    public static Tensor Reshape(Tensor x, params int[] dims) => throw KilnSymbolicException.Create();
    /// <summary>Swaps two axes.</summary>
    public static Tensor Transpose(Tensor x, int axis0, int axis1) => throw KilnSymbolicException.Create();
    /// <summary>Reorders the axes: output axis i is input axis <c>order[i]</c>.</summary>
    public static Tensor Permute(Tensor x, params int[] order) => throw KilnSymbolicException.Create();
    /// <summary>Elements <c>start</c> (inclusive) to <c>end</c> (exclusive) along <paramref name="axis"/>.</summary>
    public static Tensor Slice(Tensor x, int axis, int start, int end) => throw KilnSymbolicException.Create();
    /// <summary>Concatenates along <paramref name="axis"/>; all other dimensions must agree.</summary>
    public static Tensor Concat(int axis, params Tensor[] parts) => throw KilnSymbolicException.Create();

    /// <summary>Rows of <paramref name="table"/> <c>[N, D]</c> picked by <paramref name="indices"/> <c>[...]</c> → <c>[..., D]</c>.</summary>
    public static Tensor Gather(Tensor table, Tensor<int> indices) => throw KilnSymbolicException.Create();
    /// <summary>The integers 0, 1, …, n−1.</summary>
    public static Tensor<int> Arange(int n) => throw KilnSymbolicException.Create();
    /// <summary>An integer tensor as floats.</summary>
    public static Tensor ToFloat(Tensor<int> x) => throw KilnSymbolicException.Create();

    /// <summary><paramref name="a"/> where <paramref name="condition"/> is non-zero, else <paramref name="b"/> (broadcasting). No gradient flows to the condition.</summary>
    public static Tensor Where(Tensor condition, Tensor a, Tensor b) => throw KilnSymbolicException.Create();
    /// <summary><paramref name="a"/> where <paramref name="condition"/> is non-zero, else the constant <paramref name="b"/> (e.g. −∞ for a mask).</summary>
    public static Tensor Where(Tensor condition, Tensor a, float b) => throw KilnSymbolicException.Create();
    /// <summary>1 where a &gt; b, else 0 (a mask; no gradient).</summary>
    public static Tensor Greater(Tensor a, Tensor b) => throw KilnSymbolicException.Create();
    /// <summary>1 where a &lt; b, else 0 (a mask; no gradient).</summary>
    public static Tensor Less(Tensor a, Tensor b) => throw KilnSymbolicException.Create();
    /// <summary>1 where a = b, else 0 (a mask; no gradient).</summary>
    public static Tensor Equal(Tensor a, Tensor b) => throw KilnSymbolicException.Create();
    /// <summary>The value with no gradient flowing back through it.</summary>
    public static Tensor StopGradient(Tensor x) => throw KilnSymbolicException.Create();

    /// <summary>
    /// Mean cross-entropy of <paramref name="logits"/> <c>[..., C]</c> against class indices
    /// <paramref name="targets"/> <c>[...]</c>; targets equal to <paramref name="ignoreIndex"/> are left out
    /// of the mean (like PyTorch's <c>ignore_index</c>).
    /// </summary>
    public static Tensor CrossEntropy(Tensor logits, Tensor<int> targets, int ignoreIndex = -100) => throw KilnSymbolicException.Create();
    /// <summary>Mean squared error over all elements.</summary>
    public static Tensor MseLoss(Tensor prediction, Tensor target) => throw KilnSymbolicException.Create();
}
