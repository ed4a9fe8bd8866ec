// Positions 0..9 looked up in a table of 8 rows.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    Embedding pos = new(8, dim);
    Linear head = new(dim, 1);
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(head.Forward(x + Ops.Sum(pos.Forward(Ops.Arange(10)), 0)), y); // expect: KILN1013 "8 rows"
}
