// LINQ is not compiled; use foreach.
using System.Linq;
using Kiln;
namespace Corpus;

[Model]
public partial class Deep(int dim = 4, int depth = 2)
{
    Linear[] layers = Module.Repeat(depth, _ => new Linear(dim, dim));
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) =>
        head.Forward(layers.Aggregate(x, (h, l) => l.Forward(h))); // expect: KILN0102 "Aggregate"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
