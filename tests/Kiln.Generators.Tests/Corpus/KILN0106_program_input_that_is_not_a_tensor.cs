// Program inputs are tensors; a plain int cannot be fed per batch.
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor(int dim = 4)
{
    Linear fc = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => fc.Forward(x);
    [Loss]
    public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y,
        int step) => Ops.MseLoss(Forward(x), y); // expect: KILN0106 "step"
}
