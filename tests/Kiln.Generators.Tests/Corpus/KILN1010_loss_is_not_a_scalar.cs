// The per-example error is returned without a mean.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    Linear fc = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => fc.Forward(x);
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.Square(Forward(x) - y); // expect: KILN1010 "Ops.Mean"
}
