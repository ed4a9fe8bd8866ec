// A method result is computed at run time, not at build time.
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor(int dim = 4)
{
    static int Widen(int d) => d * 2;
    Linear fc = new(dim, Widen(dim)); // expect: KILN0012 "Widen"
    Linear head = new(8, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => head.Forward(fc.Forward(x));
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
