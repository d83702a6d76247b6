#!/usr/bin/python3
"""A notification server stand-in for tests: owns org.freedesktop.Notifications
and prints each Notify as one JSON line ({"id", "app", "summary", "body",
"actions"}). Prints "ready" once it owns the name. With --click, it answers
each notification that offers a "default" action by invoking it a second later,
as if the user clicked it."""
import json
import sys

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

IFACE = "org.freedesktop.Notifications"


class Server(dbus.service.Object):
    def __init__(self, bus, click):
        self.next_id = 1
        self.click = click
        super().__init__(bus, "/org/freedesktop/Notifications")

    @dbus.service.method(IFACE, in_signature="susssasa{sv}i", out_signature="u")
    def Notify(self, app, replaces, icon, summary, body, actions, hints, timeout):
        nid = replaces or self.next_id
        self.next_id += 1
        print(json.dumps({"id": int(nid), "app": str(app), "summary": str(summary),
                          "body": str(body), "actions": [str(a) for a in actions]},
                         ensure_ascii=False), flush=True)
        if self.click and "default" in [str(a) for a in actions][::2]:
            GLib.timeout_add(1000, self._invoke, nid)
        return dbus.UInt32(nid)

    def _invoke(self, nid):
        self.ActionInvoked(dbus.UInt32(nid), "default")
        self.NotificationClosed(dbus.UInt32(nid), dbus.UInt32(2))
        return False

    @dbus.service.method(IFACE, in_signature="", out_signature="as")
    def GetCapabilities(self):
        return ["body", "actions"]

    @dbus.service.method(IFACE, in_signature="", out_signature="ssss")
    def GetServerInformation(self):
        return ("kizuki-test-notifyd", "kizuki", "1", "1.2")

    @dbus.service.method(IFACE, in_signature="u", out_signature="")
    def CloseNotification(self, nid):
        self.NotificationClosed(dbus.UInt32(nid), dbus.UInt32(3))

    @dbus.service.signal(IFACE, signature="us")
    def ActionInvoked(self, nid, action):
        pass

    @dbus.service.signal(IFACE, signature="uu")
    def NotificationClosed(self, nid, reason):
        pass


def main():
    DBusGMainLoop(set_as_default=True)
    bus = dbus.SessionBus()
    name = dbus.service.BusName(IFACE, bus)
    server = Server(bus, "--click" in sys.argv[1:])
    print("ready", flush=True)
    GLib.MainLoop().run()
    del name, server


if __name__ == "__main__":
    sys.exit(main())
