// A float hyperparameter is not a size.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4, float scale = 1f)
{
    Linear fc = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => fc.Forward(x);
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "scale")] Tensor y) => Ops.MseLoss(Forward(x), y); // expect: KILN1011 "float"
}
