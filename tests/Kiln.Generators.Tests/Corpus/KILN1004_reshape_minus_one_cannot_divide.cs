// Reshape with -1: 6 elements cannot be split into rows of 4.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    Linear up = new(dim, 3);
    [Loss] public Tensor Loss([Shape("2", "dim")] Tensor x) => Ops.Mean(Ops.Reshape(up.Forward(x), -1, 4)); // expect: KILN1004 "4"
}
