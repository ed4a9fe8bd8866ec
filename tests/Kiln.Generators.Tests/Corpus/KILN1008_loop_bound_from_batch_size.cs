// A loop whose index enters the arithmetic is unrolled, so its bound must be known at build time; the batch is not.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    Linear fc = new(dim, dim);
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x)
    {
        for (int i = 0; i < x.Dim(0); i++) // expect: KILN1008 "data size B"
            x = fc.Forward(x) * i;
        return head.Forward(x);
    }
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
