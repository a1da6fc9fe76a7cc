#!/usr/bin/env python3
"""Writes the HTTP edge-case fixtures of the parity test (synthetic Ethernet/IPv4 captures).
Usage: python3 mk_fixtures.py [OUT]; then python3 /work/shared/corpus/gen_truth.py OUT/*.pcap
(tshark 4.0) makes each NAME.truth/."""
import struct, sys
OUT = sys.argv[1] if len(sys.argv) > 1 else '.'
def pcap(path, pkts):
    with open(path,'wb') as f:
        f.write(struct.pack('<IHHiIII',0xa1b2c3d4,2,4,0,0,65535,1))
        for ts,data in pkts:
            f.write(struct.pack('<IIII',int(ts),int((ts%1)*1e6),len(data),len(data)))
            f.write(data)
def ip4(s): return bytes(int(x) for x in s.split('.'))
def csum(b):
    if len(b)%2: b+=b'\0'
    s=sum(struct.unpack('!%dH'%(len(b)//2),b)); s=(s>>16)+(s&0xffff); s+=s>>16; return (~s)&0xffff
def frame(src,dst,sp,dp,seq,ack,flags,payload,proto=6):
    if proto==6:
        l4=struct.pack('!HHIIBBHHH',sp,dp,seq,ack,5<<4,flags,65535,0,0)+payload
    else:
        l4=struct.pack('!HHHH',sp,dp,8+len(payload),0)+payload
    iph=struct.pack('!BBHHHBBH4s4s',0x45,0,20+len(l4),1,0,64,proto,0,ip4(src),ip4(dst))
    iph=iph[:10]+struct.pack('!H',csum(iph))+iph[12:]
    return b'\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\x08\x00'+iph+l4
class Conv:
    def __init__(s,c='10.0.0.2',s_='10.0.0.9',cp=50000,sp=80):
        s.c,s.s,s.cp,s.sp=c,s_,cp,sp; s.cseq=1000; s.sseq=5000; s.pkts=[]; s.t=1.0
    def pkt(s,fc,flags,data=b''):
        s.t+=0.01
        if fc: s.pkts.append((s.t,frame(s.c,s.s,s.cp,s.sp,s.cseq,s.sseq,flags,data))); s.cseq+=len(data)+(1 if flags&3 else 0)
        else: s.pkts.append((s.t,frame(s.s,s.c,s.sp,s.cp,s.sseq,s.cseq,flags,data))); s.sseq+=len(data)+(1 if flags&3 else 0)
    def hs(s):
        s.pkt(1,2); s.pkt(0,0x12); s.pkt(1,0x10)
    def C(s,d): s.pkt(1,0x18,d)
    def S(s,d): s.pkt(0,0x18,d)
# 1: 100 continue
c=Conv(); c.hs()
c.C(b"POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")  #4
c.S(b"HTTP/1.1 100 Continue\r\n\r\n") #5
c.C(b"hello") #6
c.S(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") #7
c.C(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n") #8
c.S(b"HTTP/1.1 204 No Content\r\n\r\n") #9
pcap(OUT+'/http-c100.pcap',c.pkts)
# 2: two interims
c=Conv(); c.hs()
c.C(b"POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n") #4
c.S(b"HTTP/1.1 100 Continue\r\n\r\n") #5
c.C(b"hello") #6
c.S(b"HTTP/1.1 102 Processing\r\n\r\n") #7
c.S(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") #8
c.C(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n") #9
c.S(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") #10
pcap(OUT+'/http-c2int.pcap',c.pkts)
# 3: pipelined
c=Conv(); c.hs()
for u in (b'/a',b'/b',b'/c'): c.C(b"GET "+u+b" HTTP/1.1\r\nHost: x\r\n\r\n") #4,5,6
for n in (b'1',b'22',b'333'): c.S(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"%len(n)+n) #7,8,9
pcap(OUT+'/http-cpipe.pcap',c.pkts)
# 4: early response
c=Conv(); c.hs()
c.C(b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\n0123456789") #4
c.S(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n") #5
c.C(b"0123456789") #6
c.C(b"0123456789") #7
c.C(b"GET /n HTTP/1.1\r\nHost: x\r\n\r\n") #8
c.S(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") #9
pcap(OUT+'/http-cearly.pcap',c.pkts)
# 5: 101 then websocket
c=Conv(); c.hs()
c.C(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n") #4
c.S(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n") #5
c.C(b"\x81\x85abcdGET / HTTP/1.1\r\n\r\n") #6
c.S(b"\x81\x05HTTP/1.1 200 OK\r\n\r\n") #7
c.C(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") #8
c.S(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") #9
pcap(OUT+'/http-c101.pcap',c.pkts)
# 6: early 100 + 401 while uploading, split body
c=Conv(); c.hs()
c.C(b"PUT /f HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n0123456789") #4
c.S(b"HTTP/1.1 100 Continue\r\n\r\n") #5
c.C(b"0123456789") #6
c.S(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n") #7
pcap(OUT+'/http-cearly100.pcap',c.pkts)
# 7: 100 continue in same segment as final
c=Conv(); c.hs()
c.C(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello") #4
c.S(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") #5
c.C(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n") #6
c.S(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") #7
pcap(OUT+'/http-csame.pcap',c.pkts)

# 8: three pipelined requests in one segment, then three responses
c=Conv(); c.hs()
c.C(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n") #4
for n in (b'1',b'22',b'333'): c.S(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"%len(n)+n) #5,6,7
pcap(OUT+'/http-pipe1seg.pcap',c.pkts)
# 9: 103 Early Hints after the request, then 200; HEAD and 304 after
c=Conv(); c.hs()
c.C(b"GET /p HTTP/1.1\r\nHost: x\r\n\r\n") #4
c.S(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n") #5
c.S(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc") #6
c.C(b"HEAD /p HTTP/1.1\r\nHost: x\r\n\r\n") #7
c.S(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n") #8
c.C(b"GET /p HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"e\"\r\n\r\n") #9
c.S(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\n\r\n") #10
pcap(OUT+'/http-103-head-304.pcap',c.pkts)
# 10: discovery: SSDP M-SEARCH and NOTIFY, mDNS and LLMNR queries without answers, one DNS query answered
def dnsq(i, name, resp=False):
    b = struct.pack('!HHHHHH', i, 0x8180 if resp else 0x0100, 1, 1 if resp else 0, 0, 0)
    for l in name.split('.'):
        b += bytes([len(l)]) + l.encode()
    b += b'\0' + struct.pack('!HH', 1, 1)
    if resp:
        b += b'\xc0\x0c' + struct.pack('!HHIH', 1, 1, 60, 4) + bytes([10, 0, 0, 9])
    return b
t = 1.0
pk = []
def u(src, dst, sp, dp, data):
    global t
    t += 0.01
    pk.append((t, frame(src, dst, sp, dp, 0, 0, 0, data, proto=17)))
u('10.0.0.2', '239.255.255.250', 50123, 1900, b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n")
u('10.0.0.7', '239.255.255.250', 1900, 1900, b"NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nNT: upnp:rootdevice\r\nNTS: ssdp:alive\r\n\r\n")
u('10.0.0.2', '224.0.0.251', 5353, 5353, dnsq(0, 'printer.local'))
u('10.0.0.2', '224.0.0.252', 50124, 5355, dnsq(77, 'fileserver'))
u('10.0.0.2', '10.0.0.53', 50125, 53, dnsq(5, 'example.com'))
u('10.0.0.53', '10.0.0.2', 53, 50125, dnsq(5, 'example.com', resp=True))
pcap(OUT+'/discovery.pcap', pk)
