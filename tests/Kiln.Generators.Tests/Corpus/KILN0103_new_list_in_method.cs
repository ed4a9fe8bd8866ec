// Collections are not tensors.
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor(int dim = 4, int depth = 2)
{
    Linear fc = new(dim, dim);
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x)
    {
        var outs = new System.Collections.Generic.List<Tensor>(); // expect: KILN0103 "List"
        return head.Forward(fc.Forward(x));
    }
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
