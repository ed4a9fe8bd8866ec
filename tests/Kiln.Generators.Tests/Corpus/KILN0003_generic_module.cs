// A generic [Module] used by an otherwise valid model.
using Kiln;
namespace Corpus;

[Module]
public partial class Block<TTag>(int dim) // expect: KILN0003 "Block"
{
    Linear fc = new(dim, dim);
    public Tensor Forward(Tensor x) => Ops.Relu(fc.Forward(x));
}

[Model]
public partial class Regressor(int dim = 4)
{
    Block<int> block = new(dim);
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => head.Forward(block.Forward(x));
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
