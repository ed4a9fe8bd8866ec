// Layers are grouped in arrays, not lists.
using System.Collections.Generic;
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor(int dim = 4)
{
    List<Linear> layers = new() { new Linear(4, 4) }; // expect: KILN0011 "List<Kiln.Linear>"
    Linear fc = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => fc.Forward(x);
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
