#!/usr/bin/env python3
"""Asks X windows to close as a window manager's close button does: a
WM_PROTOCOLS/WM_DELETE_WINDOW client message to each window id given (decimal).
Uses libX11 through ctypes (no window manager runs under the tests' Xvfb)."""
import ctypes
import sys

x11 = ctypes.cdll.LoadLibrary("libX11.so.6")
x11.XOpenDisplay.restype = ctypes.c_void_p
x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
x11.XInternAtom.restype = ctypes.c_ulong
x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
x11.XFlush.argtypes = [ctypes.c_void_p]
x11.XCloseDisplay.argtypes = [ctypes.c_void_p]


class XClientMessageEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("serial", ctypes.c_ulong),
        ("send_event", ctypes.c_int),
        ("display", ctypes.c_void_p),
        ("window", ctypes.c_ulong),
        ("message_type", ctypes.c_ulong),
        ("format", ctypes.c_int),
        ("data", ctypes.c_long * 5),
    ]


class XEvent(ctypes.Union):
    _fields_ = [("xclient", XClientMessageEvent), ("pad", ctypes.c_long * 24)]


x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.POINTER(XEvent)]

display = x11.XOpenDisplay(None)
if not display:
    sys.exit("cannot open the display")
protocols = x11.XInternAtom(display, b"WM_PROTOCOLS", 0)
delete = x11.XInternAtom(display, b"WM_DELETE_WINDOW", 0)
for arg in sys.argv[1:]:
    ev = XEvent()
    ev.xclient.type = 33  # ClientMessage
    ev.xclient.window = int(arg)
    ev.xclient.message_type = protocols
    ev.xclient.format = 32
    ev.xclient.data[0] = delete
    ev.xclient.data[1] = 0  # CurrentTime
    x11.XSendEvent(display, int(arg), 0, 0, ctypes.byref(ev))
x11.XFlush(display)
x11.XCloseDisplay(display)
