#!/usr/bin/python3
"""Reads and drives a StatusNotifierItem the way a panel would.

  sni.py labels BUS-NAME        the menu's top-level labels, as a JSON list
  sni.py click BUS-NAME LABEL   clicks the menu item with that label
  sni.py tooltip BUS-NAME       the tooltip's title and text, as JSON
"""
import json
import sys
import time

import dbus

ITEM_PATH = "/StatusNotifierItem"
ITEM_IFACE = "org.kde.StatusNotifierItem"
MENU_IFACE = "com.canonical.dbusmenu"


def item_props(bus, name):
    obj = bus.get_object(name, ITEM_PATH)
    return dbus.Interface(obj, dbus.PROPERTIES_IFACE)


def menu(bus, name):
    path = item_props(bus, name).Get(ITEM_IFACE, "Menu")
    return dbus.Interface(bus.get_object(name, path), MENU_IFACE)


def entries(bus, name):
    """(id, label) of each visible top-level entry that is not a separator."""
    _rev, layout = menu(bus, name).GetLayout(0, 1, [])
    out = []
    for child in layout[2]:
        cid, props, _ = child
        if props.get("type") == "separator" or not props.get("visible", True):
            continue
        out.append((int(cid), str(props.get("label", ""))))
    return out


def main(argv):
    bus = dbus.SessionBus()
    cmd, name = argv[1], argv[2]
    if cmd == "labels":
        print(json.dumps([label for _, label in entries(bus, name)], ensure_ascii=False))
    elif cmd == "click":
        want = argv[3]
        for cid, label in entries(bus, name):
            if label == want:
                menu(bus, name).Event(cid, "clicked", dbus.Int32(0, variant_level=1),
                                      dbus.UInt32(int(time.time())))
                print("clicked", cid)
                return 0
        print("no item labelled", want, file=sys.stderr)
        return 1
    elif cmd == "tooltip":
        _icon, _pixmaps, title, text = item_props(bus, name).Get(ITEM_IFACE, "ToolTip")
        print(json.dumps({"title": str(title), "text": str(text)}, ensure_ascii=False))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
