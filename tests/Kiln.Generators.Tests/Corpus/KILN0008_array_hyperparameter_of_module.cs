// A module hyperparameter of array type.
using Kiln;
namespace Corpus;

[Module]
public partial class Block(int dim, int[] widths) // expect: KILN0008 "int[]"
{
    Linear fc = new(dim, dim);
    public Tensor Forward(Tensor x) => fc.Forward(x);
}

[Model]
public partial class Regressor(int dim = 4)
{
    Block block = new(dim, new[] { 1, 2 });
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => head.Forward(block.Forward(x));
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
