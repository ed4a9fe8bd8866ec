// Only layers and modules can be created.
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor(int dim = 4, int depth = 2)
{
    Linear fc = new(dim, dim);
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x)
    {
        var rng = new System.Random(1); // expect: KILN0103 "System.Random"
        return head.Forward(fc.Forward(x));
    }
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
