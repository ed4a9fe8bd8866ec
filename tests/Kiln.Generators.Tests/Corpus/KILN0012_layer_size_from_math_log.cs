// Math.Log of a hyperparameter has no symbolic form.
using System;
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor(int dim = 4)
{
    Linear fc = new(dim, (int)Math.Log(dim)); // expect: KILN0012 "Math.Log"
    Linear head = new(1, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => head.Forward(fc.Forward(x));
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
