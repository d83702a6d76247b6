# A TCP client that connects, sends and receives through io_uring only:
# no connect/send/recv system calls (raw io_uring_setup/enter via ctypes).
# Used by tests/capture_scenarios.rs. Usage: uring_client.py PORT NBYTES
import ctypes, mmap, socket, struct, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SETUP, ENTER = 425, 426
params = ctypes.create_string_buffer(120)
ring = libc.syscall(ctypes.c_long(SETUP), ctypes.c_uint(4), params)
if ring < 0:
    sys.exit("io_uring_setup failed: errno %d" % ctypes.get_errno())
sq_entries, cq_entries = struct.unpack_from("II", params, 0)
sq = struct.unpack_from("IIIIIII", params, 40)   # head tail mask entries flags dropped array
cq = struct.unpack_from("IIIIII", params, 80)    # head tail mask entries overflow cqes
prot, flags = mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED | mmap.MAP_POPULATE
sqm = mmap.mmap(ring, sq[6] + sq_entries * 4, flags, prot, offset=0)
cqm = mmap.mmap(ring, cq[5] + cq_entries * 16, flags, prot, offset=0x8000000)
sqes = mmap.mmap(ring, sq_entries * 64, flags, prot, offset=0x10000000)

def run(opcode, fd, addr, length, off=0):
    tail = struct.unpack_from("I", sqm, sq[1])[0]
    idx = tail & struct.unpack_from("I", sqm, sq[2])[0]
    struct.pack_into("BBHiQQIIQHHiQQ", sqes, idx * 64, opcode, 0, 0, fd, off, addr, length, 0, 7, 0, 0, 0, 0, 0)
    struct.pack_into("I", sqm, sq[6] + idx * 4, idx)
    struct.pack_into("I", sqm, sq[1], tail + 1)
    if libc.syscall(ctypes.c_long(ENTER), ctypes.c_int(ring), ctypes.c_uint(1), ctypes.c_uint(1), ctypes.c_uint(1), None, ctypes.c_size_t(0)) < 0:
        sys.exit("io_uring_enter failed: errno %d" % ctypes.get_errno())
    head = struct.unpack_from("I", cqm, cq[0])[0]
    _, res, _ = struct.unpack_from("QiI", cqm, cq[5] + (head & struct.unpack_from("I", cqm, cq[2])[0]) * 16)
    struct.pack_into("I", cqm, cq[0], head + 1)
    if res < 0:
        sys.exit("io_uring op %d failed: errno %d" % (opcode, -res))
    return res

CONNECT, SEND, RECV = 16, 26, 27
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sa = ctypes.create_string_buffer(struct.pack("!HH4s8x", 0, port, socket.inet_aton("127.0.0.1")), 16)
struct.pack_into("=H", sa, 0, socket.AF_INET)
run(CONNECT, s.fileno(), ctypes.addressof(sa), 0, off=16)
data = ctypes.create_string_buffer(b"u" * n, n)
sent = 0
while sent < n:
    sent += run(SEND, s.fileno(), ctypes.addressof(data) + sent, n - sent)
s.shutdown(socket.SHUT_WR)
buf = ctypes.create_string_buffer(65536)
got = 0
while True:
    r = run(RECV, s.fileno(), ctypes.addressof(buf), 65536)
    if r == 0:
        break
    got += r
print(sent, got)
