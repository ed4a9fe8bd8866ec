// Targets must have one dimension less than logits.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4, int classes = 3)
{
    Linear head = new(dim, classes);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => head.Forward(x);
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "classes")] Tensor<int> y) => Ops.CrossEntropy(Forward(x), y); // expect: KILN1003 "one dimension less"
}
