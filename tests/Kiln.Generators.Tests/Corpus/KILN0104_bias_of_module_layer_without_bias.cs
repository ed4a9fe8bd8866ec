// The same mistake inside a module.
using Kiln;
namespace Corpus;

[Module]
public partial class Affine(int dim)
{
    Linear proj = new(dim, dim, false);
    public Tensor Forward(Tensor x) => Ops.MatMul(x, proj.Weight.T) + proj.Bias; // expect: KILN0104 "without a bias"
}

[Model]
public partial class Regressor(int dim = 4)
{
    Affine affine = new(dim);
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => head.Forward(affine.Forward(x));
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
