// The loss must be a scalar; reported at the value returned.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    Linear head = new(dim, 1);
    [Loss]
    public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y)
    {
        var d = head.Forward(x) - y;
        return d * d; // expect: KILN1010 "[B, 1]"
    }
}
