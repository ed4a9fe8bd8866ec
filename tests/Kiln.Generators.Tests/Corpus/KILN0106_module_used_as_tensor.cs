// A module passed where a tensor is expected.
// allow: CS1503
using Kiln;
namespace Corpus;

[Module]
public partial class Block(int dim)
{
    Linear fc = new(dim, dim);
    public Tensor Forward(Tensor x) => fc.Forward(x);
}

[Model]
public partial class Regressor(int dim = 4)
{
    Block block = new(dim);
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => head.Forward(block); // expect: KILN0106 "module Block"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
