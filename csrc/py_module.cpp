// Makes the op library importable as `q6bit._C`: importing it runs the
// TORCH_LIBRARY registrations in ops.cpp. It defines no Python functions of
// its own; everything is reached through torch.ops.q6bit.
#include <Python.h>

extern "C" PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C",
                                          "q6bit torch ops (torch.ops.q6bit)",
                                          -1, nullptr};
  return PyModule_Create(&module_def);
}
