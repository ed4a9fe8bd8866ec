// A layer built in a classic constructor body is invisible to the generator.
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor
{
    readonly Linear fc; // expect: KILN0010 "fc"
    public Regressor(int dim) { fc = new Linear(dim, 1); }
    public Tensor Forward([Shape("B", "4")] Tensor x) => fc.Forward(x);
    [Loss] public Tensor Loss([Shape("B", "4")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
