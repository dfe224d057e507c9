"""The shipped MNIST teacher loads (hash-checked, eval mode) and reproduces its committed 52 test errors and 26 validation errors."""

import kdlib


def test_shipped_mnist_teacher_makes_52_errors(mnist):
    teacher = kdlib.load_teacher("mnist-teacher")
    assert isinstance(teacher, kdlib.SmallCNN)
    assert not any(m.training for m in teacher.modules())
    logits = kdlib.predict(teacher, mnist.x_test)
    assert kdlib.errors(logits, mnist.y_test) == 52  # book/part2/teacher.ipynb: 52 errors out of 10,000
    assert kdlib.errors(kdlib.predict(teacher, mnist.x_val), mnist.y_val) == 26  # and 26 of 5,000 validation images
