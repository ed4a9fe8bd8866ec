// Logits for 8 rows, targets for 4.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4, int classes = 3)
{
    Linear head = new(dim, classes);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => head.Forward(x);
    [Loss] public Tensor Loss([Shape("8", "dim")] Tensor x, [Shape("4")] Tensor<int> y) => Ops.CrossEntropy(Forward(x), y); // expect: KILN1002 "CrossEntropy"
}
