// Tensor = 2 on a model whose layers are not tensor-parallel: every rank would hold the whole model (a warning).
using Kiln;
namespace Corpus;

[Model, Parallel(Data = 2, Tensor = 2)] // expect: KILN4007 "no int hyperparameter 'tensor'"
public partial class Mlp(int din = 6, int hidden = 24, int dout = 3)
{
    Linear fc1 = new(din, hidden), fc2 = new(hidden, dout);
    public Tensor Forward([Shape("B", "din")] Tensor x) => fc2.Forward(Ops.Gelu(fc1.Forward(x)));
    [Loss] public Tensor Loss([Shape("B", "din")] Tensor x, [Shape("B", "dout")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
