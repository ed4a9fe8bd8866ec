// The module's Forward returns an array, which Kiln cannot compile, so the call has nothing to inline.
using Kiln;
namespace Corpus;

[Module]
public partial class Splitter(int dim)
{
    Linear a = new(dim, dim), b = new(dim, dim);
    public Tensor[] Forward(Tensor x) => new[] { a.Forward(x), b.Forward(x) };
}

[Model]
public partial class Regressor(int dim = 4)
{
    Splitter split = new(dim);
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x)
    {
        var h = split.Forward(x)[0]; // expect: KILN0007 "Splitter"
        return head.Forward(h);
    }
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
