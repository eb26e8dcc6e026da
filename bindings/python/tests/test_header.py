"""The ctypes declarations match include/diffclip.h: every DC_API function with its
argument and result types, every struct field, enum value, macro and callback type."""

import unittest
from ctypes import (POINTER, c_char, c_char_p, c_double, c_float, c_int, c_int64, c_size_t,
                    c_uint, c_uint8, c_uint64, c_void_p)

import cheader
from support import HEADER
from diffclip import _ffi, _types

_BASES = {"int": c_int, "unsigned": c_uint, "size_t": c_size_t, "int64_t": c_int64,
          "uint64_t": c_uint64, "uint8_t": c_uint8, "double": c_double, "float": c_float,
          "char": c_char}


class HeaderTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.header = cheader.parse(HEADER)

    def ctype(self, t, parameter=False):
        """The ctypes type the binding must use for a C type."""
        pointers = list(t.pointers)
        array = t.array
        if parameter and array is not None:  # an array parameter is a pointer
            pointers.append(False)
            array = None
        # constness of what each pointer points to, innermost first
        pointee_const = [t.const] + pointers[:-1]
        if not pointers and t.base == "void":
            return None
        if pointers and t.base == "char" and pointee_const[0]:
            result, extra = c_char_p, len(pointers) - 1
        elif pointers and (t.base == "void" or t.base in self.header.opaque):
            result, extra = c_void_p, len(pointers) - 1
        else:
            result, extra = self.base(t.base), len(pointers)
        for _ in range(extra):
            result = POINTER(result)
        if array is not None:
            result = result * int(self.header.macros.get(array, array))
        return result

    def base(self, name):
        if name in _BASES:
            return _BASES[name]
        if name in self.header.enums:
            return c_int
        if name in _types.STRUCTS:
            return _types.STRUCTS[name]
        if name in _types.CALLBACKS:
            return _types.CALLBACKS[name]
        self.fail("no ctypes counterpart for C type %s (add it to diffclip/_types.py)" % name)

    def same(self, ours, expected):
        if hasattr(expected, "_length_") and hasattr(ours, "_length_"):
            return ours._length_ == expected._length_ and self.same(ours._type_, expected._type_)
        return ours is expected

    def test_functions(self):
        problems = []
        declared = {f.name: f for f in self.header.functions}
        for name in sorted(set(declared) - set(_ffi.FUNCTIONS)):
            problems.append("%s: declared in the header, missing in _ffi.FUNCTIONS" % name)
        for name in sorted(set(_ffi.FUNCTIONS) - set(declared)):
            problems.append("%s: in _ffi.FUNCTIONS, not in the header" % name)
        for name in sorted(set(declared) & set(_ffi.FUNCTIONS)):
            function = declared[name]
            restype, argtypes = _ffi.FUNCTIONS[name]
            if len(argtypes) != len(function.params):
                problems.append("%s: %d arguments, the header has %d" % (
                    name, len(argtypes), len(function.params)))
                continue
            if not self.same(restype, self.ctype(function.result)):
                problems.append("%s: result %s, want %s" % (name, restype,
                                                           self.ctype(function.result)))
            for i, (ours, (param, t)) in enumerate(zip(argtypes, function.params)):
                if not self.same(ours, self.ctype(t, parameter=True)):
                    problems.append("%s: argument %d (%s) is %s, want %s" % (
                        name, i, param, ours, self.ctype(t, parameter=True)))
        self.assertFalse(problems, "\n".join(problems))

    def test_structs(self):
        self.assertEqual(sorted(self.header.structs), sorted(_types.STRUCTS))
        for name, fields in self.header.structs.items():
            ours = _types.STRUCTS[name]._fields_
            self.assertEqual([f for f, _ in ours], [f for f, _ in fields], name)
            for (field, ours_type), (_, t) in zip(ours, fields):
                self.assertTrue(self.same(ours_type, self.ctype(t)), "%s.%s is %s, want %s" % (
                    name, field, ours_type, self.ctype(t)))

    def test_opaque_handles(self):
        self.assertEqual(sorted(self.header.opaque), sorted(_types.OPAQUE))

    def test_callbacks(self):
        self.assertEqual(sorted(self.header.callbacks), sorted(_types.CALLBACKS))
        for name, function in self.header.callbacks.items():
            ours = _types.CALLBACKS[name]
            self.assertTrue(self.same(ours._restype_, self.ctype(function.result)), name)
            self.assertEqual(len(ours._argtypes_), len(function.params), name)
            for ours_type, (param, t) in zip(ours._argtypes_, function.params):
                self.assertTrue(self.same(ours_type, self.ctype(t, parameter=True)),
                                "%s(%s)" % (name, param))

    def test_enums(self):
        self.assertEqual(sorted(self.header.enums), sorted(_types.C_ENUMS))
        for name, values in self.header.enums.items():
            cls, prefix = _types.C_ENUMS[name]
            ours = {member.c_name: int(member) for member in cls}
            self.assertEqual(ours, values, name)
            self.assertTrue(all(v.startswith(prefix) for v in values), name)

    def test_macros(self):
        for name, value in self.header.macros.items():
            self.assertEqual(getattr(_types, name, None), value, name)
        ours = {name for name in vars(_types) if name.startswith("DC_")}
        self.assertEqual(sorted(ours - set(self.header.macros)), [])


if __name__ == "__main__":
    unittest.main()
