// The module takes its size through a classic constructor, so Kiln cannot see how it is used.
using Kiln;
namespace Corpus;

[Module]
public partial class Block
{
    readonly int width;
    public Block(int width) { this.width = width; }
    Linear fc = new(4, 4);
    public Tensor Forward(Tensor x) => Ops.Relu(fc.Forward(x));
}

[Model]
public partial class Regressor(int dim = 4)
{
    Block block = new(dim); // expect: KILN0012 "primary constructor"
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => head.Forward(block.Forward(x));
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
