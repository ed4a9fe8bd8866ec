// How many blocks to build must be known when the program is generated.
using Kiln;
namespace Corpus;

[Module]
public partial class Block(int dim)
{
    Linear fc = new(dim, dim);
    public Tensor Forward(Tensor x) => x + Ops.Relu(fc.Forward(x));
}

[Model]
public partial class Deep(int depth, int dim = 4)
{
    Block[] blocks = Module.Repeat(depth, _ => new Block(dim)); // expect: KILN0013 "depth"
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x)
    {
        foreach (var b in blocks) x = b.Forward(x);
        return head.Forward(x);
    }
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
