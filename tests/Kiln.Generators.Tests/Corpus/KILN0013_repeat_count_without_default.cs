// Blocks that differ by their index are built one by one, so how many there are must be known when the program is generated.
using Kiln;
namespace Corpus;

[Module]
public partial class Block(int dim, bool gated)
{
    Linear fc = new(dim, dim);
    public Tensor Forward(Tensor x) => gated ? x + Ops.Sigmoid(fc.Forward(x)) * x : x + Ops.Relu(fc.Forward(x));
}

[Model]
public partial class Deep(int depth, int dim = 4)
{
    Block[] blocks = Module.Repeat(depth, i => new Block(dim, i % 2 == 0)); // expect: KILN0013 "depth"
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x)
    {
        foreach (var b in blocks) x = b.Forward(x);
        return head.Forward(x);
    }
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
