"""The shipped MNIST teacher loads (hash-checked, eval mode) and reproduces its committed 55 test errors."""

import kdlib


def test_shipped_mnist_teacher_makes_55_errors(mnist):
    teacher = kdlib.load_teacher("mnist-teacher")
    assert isinstance(teacher, kdlib.SmallCNN)
    assert not any(m.training for m in teacher.modules())
    logits = kdlib.predict(teacher, mnist.x_test)
    assert kdlib.errors(logits, mnist.y_test) == 55  # book/part2/teacher.ipynb: 55 errors out of 10,000
