// An integer tensor cannot be differentiated.
using Kiln;
namespace Corpus;

[Model]
public partial class Counter(int dim = 4)
{
    Linear fc = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => fc.Forward(x);
    [Loss]
    public Tensor<int> Loss([Shape("B", "dim")] Tensor x) => Ops.Arange(3); // expect: KILN0004 "Tensor<int>"
}
