//! Raw Ethernet frames, for the attack that sends packets around the proxy
//! (issue 10.6): build an IPv4 UDP datagram or TCP SYN, optionally with an
//! 802.1Q tag, send it on an interface (`AF_PACKET`, needs `NET_RAW`), and
//! watch an interface for such packets arriving.

use anyhow::{bail, Context, Result};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// What to put in the frame.
#[derive(Debug, Clone)]
pub struct FrameSpec {
    /// The next hop's MAC (e.g. the sidecar's on the agent's network).
    pub dst_mac: [u8; 6],
    /// The sender's MAC.
    pub src_mac: [u8; 6],
    /// An 802.1Q tag with this VLAN id (0: priority-tagged), or none.
    pub vlan: Option<u16>,
    /// Source and destination addresses (the source may be spoofed).
    pub src_ip: Ipv4Addr,
    /// Where the packet claims to go.
    pub dst_ip: Ipv4Addr,
    /// Destination port.
    pub dst_port: u16,
    /// UDP with `payload`, or a TCP SYN.
    pub tcp_syn: bool,
    /// The UDP payload (a marker the watcher looks for).
    pub payload: Vec<u8>,
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let parts: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()
        .with_context(|| format!("`{s}` is not a MAC address"))?;
    parts
        .try_into()
        .map_err(|_| anyhow::anyhow!("`{s}` is not a MAC address"))
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in data.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The whole Ethernet frame.
pub fn build(spec: &FrameSpec) -> Vec<u8> {
    let l4: Vec<u8> = if spec.tcp_syn {
        let mut t = Vec::with_capacity(20);
        t.extend_from_slice(&40000u16.to_be_bytes());
        t.extend_from_slice(&spec.dst_port.to_be_bytes());
        t.extend_from_slice(&0x1234_5678u32.to_be_bytes()); // seq
        t.extend_from_slice(&0u32.to_be_bytes()); // ack
        t.extend_from_slice(&[0x50, 0x02]); // 20-byte header, SYN
        t.extend_from_slice(&64240u16.to_be_bytes()); // window
        t.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&spec.src_ip.octets());
        pseudo.extend_from_slice(&spec.dst_ip.octets());
        pseudo.extend_from_slice(&[0, 6]);
        pseudo.extend_from_slice(&(t.len() as u16).to_be_bytes());
        pseudo.extend_from_slice(&t);
        let c = checksum(&pseudo);
        t[16..18].copy_from_slice(&c.to_be_bytes());
        t
    } else {
        let mut u = Vec::with_capacity(8 + spec.payload.len());
        u.extend_from_slice(&40000u16.to_be_bytes());
        u.extend_from_slice(&spec.dst_port.to_be_bytes());
        u.extend_from_slice(&((8 + spec.payload.len()) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]); // no checksum (allowed over IPv4)
        u.extend_from_slice(&spec.payload);
        u
    };
    let mut ip = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64];
    ip.push(if spec.tcp_syn { 6 } else { 17 });
    ip.extend_from_slice(&[0, 0]);
    ip.extend_from_slice(&spec.src_ip.octets());
    ip.extend_from_slice(&spec.dst_ip.octets());
    let total = (ip.len() + l4.len()) as u16;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut frame = Vec::new();
    frame.extend_from_slice(&spec.dst_mac);
    frame.extend_from_slice(&spec.src_mac);
    if let Some(vid) = spec.vlan {
        frame.extend_from_slice(&[0x81, 0x00]);
        frame.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    }
    frame.extend_from_slice(&[0x08, 0x00]);
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(&l4);
    frame
}

fn ifindex(iface: &str) -> Result<i32> {
    let name = std::ffi::CString::new(iface)?;
    // SAFETY: a valid NUL-terminated name.
    let i = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if i == 0 {
        bail!("no interface `{iface}`");
    }
    Ok(i as i32)
}

fn packet_socket() -> Result<i32> {
    // SAFETY: plain socket(2); the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW,
            (libc::ETH_P_ALL as u16).to_be() as i32,
        )
    };
    if fd < 0 {
        bail!(
            "cannot open a raw packet socket: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(fd)
}

/// Sends `frame` on `iface` `count` times.
pub fn send(iface: &str, frame: &[u8], count: u32) -> Result<()> {
    let fd = packet_socket()?;
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_ifindex = ifindex(iface)?;
    addr.sll_halen = 6;
    addr.sll_addr[..6].copy_from_slice(&frame[..6]);
    for _ in 0..count {
        // SAFETY: frame and addr outlive the call; lengths are theirs.
        let n = unsafe {
            libc::sendto(
                fd,
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            unsafe { libc::close(fd) };
            bail!("sending the frame: {e}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    unsafe { libc::close(fd) };
    Ok(())
}

/// Watches every interface for `seconds`: prints `UDP WORD` for each frame
/// holding `marker` (the word that starts with it), `SYN PORT` for each TCP
/// SYN to `syn_port`. Starts with `watching` once the socket is open.
pub fn sniff(marker: &[u8], syn_port: u16, seconds: u64) -> Result<()> {
    let fd = packet_socket()?;
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 200_000,
    };
    // SAFETY: setsockopt with a timeval of the right size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        )
    };
    println!("watching");
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut buf = vec![0u8; 65536];
    while Instant::now() < end {
        // SAFETY: buf is writable for its length.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n <= 0 {
            continue;
        }
        let frame = &buf[..n as usize];
        if let Some(at) = frame.windows(marker.len()).position(|w| w == marker) {
            // The whole marker word: the payloads are `MARKER` + a name.
            let word: Vec<u8> = frame[at..]
                .iter()
                .copied()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-')
                .collect();
            println!("UDP {}", String::from_utf8_lossy(&word));
        }
        // An IPv4 TCP SYN to syn_port (the kernel hands frames untagged).
        if frame.len() >= 14 + 20 + 20 && frame[12..14] == [0x08, 0x00] && frame[14 + 9] == 6 {
            let ihl = usize::from(frame[14] & 0x0f) * 4;
            let tcp = &frame[14 + ihl..];
            if tcp.len() >= 14
                && u16::from_be_bytes([tcp[2], tcp[3]]) == syn_port
                && tcp[13] & 0x12 == 0x02
            {
                println!("SYN {syn_port}");
            }
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
    unsafe { libc::close(fd) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_well_formed() {
        let spec = FrameSpec {
            dst_mac: parse_mac("02:42:0a:00:00:02").unwrap(),
            src_mac: parse_mac("02:42:0a:00:00:03").unwrap(),
            vlan: Some(0),
            src_ip: "10.0.0.3".parse().unwrap(),
            dst_ip: "172.18.0.5".parse().unwrap(),
            dst_port: 9999,
            tcp_syn: false,
            payload: b"marker".to_vec(),
        };
        let f = build(&spec);
        assert_eq!(&f[12..16], &[0x81, 0, 0, 0]);
        assert_eq!(&f[16..18], &[0x08, 0x00]);
        let ip = &f[18..38];
        assert_eq!(checksum(ip), 0, "a valid header sums to zero");
        assert!(f.ends_with(b"marker"));
        let syn = build(&FrameSpec {
            tcp_syn: true,
            vlan: None,
            ..spec
        });
        assert_eq!(syn.len(), 14 + 20 + 20);
        assert_eq!(syn[14 + 20 + 13], 0x02);
        assert!(parse_mac("zz").is_err());
    }
}
