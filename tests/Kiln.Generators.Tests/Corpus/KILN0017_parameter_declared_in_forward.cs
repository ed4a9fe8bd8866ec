// Parameters are declared once, as fields; a Parameter call inside a method would declare one per call.
using Kiln;
namespace Corpus;

[Model]
public partial class Scaled(int dim = 4)
{
    public Tensor Forward([Shape("B", "dim")] Tensor x)
    {
        var gain = Parameter.Ones(dim); // expect: KILN0017 "outside a field initializer"
        return x * gain;
    }
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "dim")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
