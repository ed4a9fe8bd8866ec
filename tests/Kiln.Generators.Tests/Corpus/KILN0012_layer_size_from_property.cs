// A property is code the generator does not run.
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor(int dim = 4)
{
    static int Width => 8;
    Linear fc = new(dim, Width); // expect: KILN0012 "property"
    Linear head = new(8, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => head.Forward(fc.Forward(x));
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
