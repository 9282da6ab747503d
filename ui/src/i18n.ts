// Every visible string, in English and Simplified Chinese. Switching is live: views read
// `t()` at render time, static labels carry `data-i18n*` attributes that `applyI18n`
// refreshes, and `onLanguageChange` listeners re-render the rest.

import type { Language } from './types';

const en = {
  'app.name': 'Skiff',
  'lang.en': 'English',
  'lang.zh-CN': '简体中文',

  'common.cancel': 'Cancel',
  'common.save': 'Save',
  'common.close': 'Close',
  'common.change': 'Change…',
  'common.language': 'Language',

  'signin.title': 'Sign in to Skiff',
  'signin.subtitle': 'Send files to your XMPP contacts, directly and fast.',
  'signin.jid': 'XMPP address',
  'signin.jidPlaceholder': 'you@example.com',
  'signin.password': 'Password',
  'signin.remember': 'Remember me on this computer',
  'signin.rememberPassword': 'Remember password',
  'signin.rememberPasswordHelp': 'Kept in the system keyring, never in Skiff’s files. Skiff then signs in by itself when it starts.',
  'signin.passwordNotSaved': 'Signed in, but your password was not remembered.',
  'signin.advanced': 'Advanced',
  'signin.server': 'Server (host:port)',
  'signin.serverPlaceholder': 'Found from the address',
  'signin.serverHelp': 'Leave empty to look the server up from your address (DNS SRV).',
  'signin.tls': 'Connection security',
  'signin.tls.starttls': 'STARTTLS (recommended)',
  'signin.tls.direct': 'Direct TLS',
  'signin.tls.plaintext': 'No encryption (local servers only)',
  'signin.caFile': 'CA certificate file',
  'signin.caFilePlaceholder': '/path/to/ca.pem',
  'signin.caHelp': 'Also trust servers whose certificate is signed by this CA (PEM file).',
  'signin.submit': 'Sign in',
  'signin.busy': 'Signing in…',
  'signin.missingJid': 'Enter your XMPP address, like you@example.com.',
  'signin.badJid': 'An XMPP address looks like name@server.',
  'signin.missingPassword': 'Enter your password.',

  'error.auth-failed': 'Wrong address or password.',
  'error.tls': 'The secure connection could not be set up.',
  'error.offline': 'Not connected to the server.',
  'error.contact-offline': 'The contact is offline.',
  'error.connect': 'Could not reach the server.',
  'error.not-found': 'That item no longer exists.',
  'error.certificate-untrusted': 'The server’s certificate is not trusted.',
  'error.certificate-changed': 'The server’s certificate is not the one you trusted before.',
  'error.plain-downgrade': 'The server offered only plain password sign-in, though this account signed in securely (SCRAM) before. Nothing was sent: this may be an attack.',
  'error.server-auth-invalid': 'The server’s sign-in answers are invalid: it may not be the server your password was set on, or it is broken.',
  'error.generic': 'Something went wrong.',

  'cert.title': 'Untrusted server certificate',
  'cert.titleChanged': 'The server’s certificate has changed',
  'cert.band': 'Security warning',
  'cert.intro': 'Skiff cannot confirm that this is really {host}: its certificate is not trusted.',
  'cert.changedWarning': 'This is not the certificate you trusted before for {host}. The server may have changed its certificate, or someone may be intercepting the connection.',
  'cert.changedAdvice': 'Only continue if the server’s admin confirms the new fingerprint.',
  'cert.advice': 'Trust it only if you expect this server to use it, ideally after comparing the fingerprint with the one its admin gives you.',
  'cert.reason.self-signed': 'It is self-signed: no certificate authority vouches for it.',
  'cert.reason.unknown-issuer': 'It is signed by an authority this computer does not trust.',
  'cert.reason.wrong-name': 'It was issued for other names, not for {host}.',
  'cert.reason.expired': 'It has expired.',
  'cert.reason.not-yet-valid': 'It is not valid yet (check this computer’s date and time).',
  'cert.reason.revoked': 'Its issuer has revoked it.',
  'cert.reason.invalid': 'It is not a valid server certificate.',
  'cert.server': 'Server',
  'cert.subject': 'Issued to',
  'cert.issuer': 'Issued by',
  'cert.issuerSelf': 'Itself (self-signed)',
  'cert.validity': 'Valid',
  'cert.validRange': '{from} to {until}',
  'cert.expired': 'Expired',
  'cert.notYetValid': 'Not yet valid',
  'cert.names': 'Names',
  'cert.noNames': 'None',
  'cert.unknown': 'Unknown',
  'cert.fingerprint': 'SHA-256 fingerprint',
  'cert.trust': 'Trust this certificate for this account',
  'cert.trustNew': 'Trust the new certificate',

  'header.transfers': 'Transfers',
  'header.history': 'History',
  'header.settings': 'Settings',
  'header.signOut': 'Sign out',
  'header.views': 'Views',
  'header.demo': 'Demo',
  'header.demoTip': 'Connected to the local demo server',

  'conn.signedOut': 'Signed out',
  'conn.connecting': 'Connecting…',
  'conn.online': 'Online',
  'conn.offline': 'Offline',
  'conn.offlineReason': 'Offline: {reason}',
  'conn.reconnectingIn': 'Reconnecting in {n} s',
  'conn.reconnectingNow': 'Reconnecting…',
  'conn.resuming': 'Connection lost, resuming…',
  'conn.secure': 'Encrypted connection (TLS), signed in with {mechanism}',
  'conn.insecure': 'Unencrypted connection, signed in with {mechanism}',

  'contacts.title': 'Contacts',
  'contacts.search': 'Search contacts',
  'contacts.searchPlaceholder': 'Search contacts',
  'contacts.empty': 'No contacts yet.',
  'contacts.noMatch': 'No contact matches “{q}”.',
  'contacts.sendFile': 'Send file…',
  'contacts.sendFileTo': 'Send a file to {name}',
  'contacts.online': '{n} online',
  'contacts.pending': 'Awaiting authorization',
  'contacts.dropTo': 'Drop to send to {name}',
  'contacts.dropToUpload': 'Drop to upload for {name}',
  'contacts.sendFileToUpload': 'Send a file to {name}: offline, so it will be uploaded to your server and sent as a link',

  'presence.available': 'Available',
  'presence.away': 'Away',
  'presence.dnd': 'Do not disturb',
  'presence.offline': 'Offline',

  'transfers.title': 'Transfers',
  'transfers.emptyTitle': 'No transfers yet',
  'transfers.emptyBody': 'Drag files or a folder onto a contact, or use “Send file…”.',
  'transfers.clearFinished': 'Clear finished',
  'transfers.active': '{n} active',

  'dir.incoming': 'Incoming',
  'dir.outgoing': 'Outgoing',
  'transfer.to': 'to {peer}',
  'transfer.from': 'from {peer}',

  'route.s5b-direct': 'Direct',
  'route.s5b-proxy': 'Proxy',
  'route.ibb': 'In-band',
  'route.upload': 'Upload',
  'route.oob': 'Link',
  'route.tip.s5b-direct': 'Direct connection between the two computers (SOCKS5)',
  'route.tip.s5b-proxy': 'Relayed through a SOCKS5 proxy',
  'route.tip.s5b-proxyVia': 'Relayed through the proxy {host}',
  'route.tip.ibb': 'Sent inside the XMPP connection (slower, works everywhere)',
  'route.tip.upload': 'Uploaded to the server over HTTP',
  'route.tip.oob': 'Fetched from a link',

  'state.offered': 'Pending',
  'state.accepted': 'Starting',
  'state.active': 'In progress',
  'state.completed': 'Completed',
  'state.failed': 'Failed',
  'state.rejected': 'Declined',
  'state.cancelled': 'Cancelled',
  'state.interrupted': 'Interrupted',

  'transfer.waitingPeer': 'Waiting for {peer} to accept…',
  'transfer.waitingYou': 'Waiting for your answer',
  'transfer.connecting': 'Connecting…',
  'transfer.left': '{eta} left',
  'transfer.doneIn': 'Done in {duration} · {speed}',
  'transfer.resumedFrom': 'Resumed at {bytes}',
  'transfer.willContinue': 'Continues when {peer} sends it again.',
  'transfer.linkResume': 'Resume fetches the rest of the link.',
  'transfer.progressLabel': '{name}: {percent}%',
  'transfer.cancel': 'Cancel',
  'transfer.open': 'Open',
  'transfer.showInFolder': 'Show in folder',
  'transfer.resume': 'Resume',
  'transfer.retry': 'Retry',
  'transfer.uploadInstead': 'Send by upload',
  'transfer.uploadInsteadTip': 'Upload the file to your server and send the contact a link to it',
  'transfer.accept': 'Accept…',
  'transfer.decline': 'Decline',
  'transfer.dismiss': 'Remove from list',

  'verify.badge.sha256': 'Verified',
  'verify.badge.md5': 'Verified (MD5)',
  'verify.badge.none': 'Not verified',
  'verify.badge.confirmed': 'Confirmed',
  'verify.badge.unconfirmed': 'Not confirmed',
  'verify.line.sha256': 'Received · verified (SHA-256)',
  'verify.line.md5': 'Received · verified (MD5)',
  'verify.line.none': 'Received · not verified',
  'verify.line.confirmed': 'Sent · confirmed by the receiver',
  'verify.line.unconfirmed': 'Sent · not confirmed',
  'verify.tip.sha256': 'The whole file’s SHA-256 checksum matches the sender’s: it arrived intact.',
  'verify.tip.md5': 'The file’s MD5 checksum matches the one the sender announced. The sender gave no SHA-256, and MD5 is a weaker check.',
  'verify.tip.none': 'Only the size was checked: the sender did not provide a checksum (for example a link, or another app), so damage on the way would go unnoticed.',
  'verify.tip.confirmed': 'The receiver checked the whole file and confirmed that it arrived intact.',
  'verify.tip.unconfirmed': 'Nobody confirmed that the file arrived intact: the receiver did not check it (for example an upload, a link, or another app).',

  'offer.title': 'Incoming file',
  'offer.wants': '{name} wants to send you a file',
  'offer.notContact': 'Not in your contacts. Accept only files you expect.',
  'offer.from': 'From',
  'offer.file': 'File',
  'offer.size': 'Size',
  'offer.sizeUnknown': 'Unknown until the download starts',
  'offer.description': 'Message',
  'offer.saveTo': 'Save to',
  'offer.change': 'Change…',
  'offer.accept': 'Accept',
  'offer.decline': 'Decline',
  'offer.queue': '{i} of {n}',
  'offer.hint': 'Enter accepts · Esc declines',

  'history.title': 'History',
  'history.contact': 'Contact',
  'history.anyContact': 'All contacts',
  'history.direction': 'Direction',
  'history.anyDirection': 'Sent and received',
  'history.sent': 'Sent',
  'history.received': 'Received',
  'history.state': 'State',
  'history.anyState': 'Any state',
  'history.since': 'From',
  'history.until': 'To',
  'history.search': 'Search by file name',
  'history.reset': 'Reset filters',
  'history.col.file': 'File',
  'history.col.peer': 'Contact',
  'history.col.size': 'Size',
  'history.col.state': 'State',
  'history.col.route': 'Route',
  'history.col.date': 'Date',
  'history.col.actions': 'Actions',
  'history.empty': 'No transfer matches these filters.',
  'history.emptyAll': 'Nothing sent or received yet.',
  'history.loading': 'Loading…',
  'history.count.one': '{n} transfer',
  'history.count.other': '{n} transfers',
  'history.limited': 'Showing the latest {n}. Narrow the filters to see older ones.',
  'history.open': 'Open',
  'history.showInFolder': 'Show in folder',
  'history.resend': 'Resend',
  'history.resume': 'Resume',
  'history.uploadInstead': 'Send by upload',
  'history.remove': 'Remove from history',
  'history.removed': 'Removed “{name}” from the history.',

  'settings.title': 'Settings',
  'settings.receiving': 'Receiving',
  'settings.downloadDir': 'Download folder',
  'settings.downloadDirNone': 'Not set',
  'settings.autoAccept': 'Accept files from contacts automatically',
  'settings.autoAcceptUpTo': 'up to',
  'settings.autoAcceptHelp': 'Larger files, and files from people who are not your contacts, always ask first.',
  'settings.network': 'Network',
  'settings.methods': 'Transfer methods, in order of preference',
  'settings.methodsHelp': 'If none of the allowed methods works, the transfer fails.',
  'settings.methodsRequired': 'Keep at least one transfer method.',
  'settings.allowUpload': 'Send by HTTP upload when a direct transfer is not possible',
  'settings.allowUploadHelp': 'When the contact is offline or their app cannot take direct transfers, the file is uploaded to your server and sent as a link. Also offered when a transfer fails.',
  'settings.serveHttp': 'Let contacts on my network download files from this computer',
  'settings.serveHttpHelp': 'One-time plain-HTTP links (jabber:iq:oob). Not encrypted: use it on networks you trust.',
  'settings.strangers': 'Files from people not in my contacts',
  'settings.strangersAsk': 'Ask me',
  'settings.strangersRefuse': 'Refuse',
  'settings.strangersHelp': 'Ask: you decide about each file; they are never accepted automatically. Refuse: the sender is told no at once and nothing shows here.',
  'settings.proxy': 'SOCKS5 proxy',
  'settings.proxyPlaceholder': 'Discover from the server',
  'settings.proxyHelp': 'The address of a proxy65 service, e.g. proxy.example.com. Empty: use the one your server offers.',
  'settings.moveUp': 'Move up',
  'settings.moveDown': 'Move down',
  'settings.appearance': 'Appearance',
  'settings.language': 'Language',
  'settings.theme': 'Theme',
  'settings.advanced': 'Advanced',
  'settings.streamhosts': 'Addresses offered for direct connections',
  'settings.streamhostsPlaceholder': 'Every local address',
  'settings.streamhostsHelp': 'One IP address per line. Empty: every usable address of this computer.',
  'settings.badAddress': '“{addr}” is not an IP address.',
  'settings.saved': 'Settings saved.',

  'method.s5b': 'SOCKS5 bytestreams (direct, or through a proxy)',
  'method.ibb': 'In-band bytestreams (through the server, slower)',

  'theme.system': 'Same as the system',
  'theme.light': 'Light',
  'theme.dark': 'Dark',

  'toast.sending.one': 'Sending a file to {name}',
  'toast.sending.other': 'Sending {n} files to {name}',
  'toast.dropOnContact': 'Drop the files on a contact to send them.',
  'toast.subscription': '{jid} asks to see when you are online.',
  'toast.offersRefused.one': 'Refused a file from {jid}: too many offers are waiting for an answer.',
  'toast.offersRefused.other': 'Refused {n} files from {jid}: too many offers are waiting for an answer.',
  'toast.dismiss': 'Dismiss',

  'drop.hint': 'Drop on a contact to send',
  'drop.uploadHint': 'Offline — the file will be uploaded to your server and sent as a link',

  'sendTo.title.one': 'Send a file',
  'sendTo.title.other': 'Send {n} files',
  'sendTo.files': 'Files to send',
  'sendTo.choose': 'Choose the contact to send to.',
  'sendTo.list': 'Contacts to send to',
  'sendTo.upload': 'Offline — will be uploaded to your server and sent as a link',
  'sendTo.unavailable': 'Offline — allow HTTP upload in the settings to send to offline contacts',
  'sendTo.hint': '↑ ↓ choose · Enter sends · Esc cancels',
} as const;

export type Key = keyof typeof en;

const zhCN: Record<Key, string> = {
  'app.name': 'Skiff',
  'lang.en': 'English',
  'lang.zh-CN': '简体中文',

  'common.cancel': '取消',
  'common.save': '保存',
  'common.close': '关闭',
  'common.change': '更改…',
  'common.language': '语言',

  'signin.title': '登录 Skiff',
  'signin.subtitle': '直接、快速地把文件发给你的 XMPP 联系人。',
  'signin.jid': 'XMPP 地址',
  'signin.jidPlaceholder': 'you@example.com',
  'signin.password': '密码',
  'signin.remember': '在这台电脑上记住我',
  'signin.rememberPassword': '记住密码',
  'signin.rememberPasswordHelp': '保存在系统密钥环中，绝不写入 Skiff 的文件。之后 Skiff 启动时会自动登录。',
  'signin.passwordNotSaved': '已登录，但密码没有被记住。',
  'signin.advanced': '高级选项',
  'signin.server': '服务器（主机:端口）',
  'signin.serverPlaceholder': '根据地址自动查找',
  'signin.serverHelp': '留空则根据你的地址查找服务器（DNS SRV）。',
  'signin.tls': '连接安全',
  'signin.tls.starttls': 'STARTTLS（推荐）',
  'signin.tls.direct': '直接 TLS',
  'signin.tls.plaintext': '不加密（仅限本机服务器）',
  'signin.caFile': 'CA 证书文件',
  'signin.caFilePlaceholder': '/path/to/ca.pem',
  'signin.caHelp': '同时信任由此 CA 签发证书的服务器（PEM 文件）。',
  'signin.submit': '登录',
  'signin.busy': '正在登录…',
  'signin.missingJid': '请输入你的 XMPP 地址，例如 you@example.com。',
  'signin.badJid': 'XMPP 地址的格式是 用户名@服务器。',
  'signin.missingPassword': '请输入密码。',

  'error.auth-failed': '地址或密码错误。',
  'error.tls': '无法建立安全连接。',
  'error.offline': '未连接到服务器。',
  'error.contact-offline': '联系人不在线。',
  'error.connect': '无法连接到服务器。',
  'error.not-found': '该项目已不存在。',
  'error.certificate-untrusted': '服务器的证书不受信任。',
  'error.certificate-changed': '服务器的证书不是你之前信任的那一个。',
  'error.plain-downgrade': '服务器只提供明文密码登录，而此账号以前是用安全方式（SCRAM）登录的。没有发送任何内容：这可能是一次攻击。',
  'error.server-auth-invalid': '服务器的登录应答无效：它可能不是设置你密码的那台服务器，或者服务器出了故障。',
  'error.generic': '出了点问题。',

  'cert.title': '不受信任的服务器证书',
  'cert.titleChanged': '服务器的证书已更改',
  'cert.band': '安全警告',
  'cert.intro': 'Skiff 无法确认这确实是 {host}：它的证书不受信任。',
  'cert.changedWarning': '这不是你之前为 {host} 信任的证书。可能是服务器更换了证书，也可能有人正在拦截这个连接。',
  'cert.changedAdvice': '只有在服务器管理员确认了新指纹之后才可继续。',
  'cert.advice': '只有在你知道这台服务器使用此证书时才信任它，最好先与服务器管理员提供的指纹核对。',
  'cert.reason.self-signed': '这是自签名证书：没有任何证书颁发机构为它担保。',
  'cert.reason.unknown-issuer': '它由这台电脑不信任的机构签发。',
  'cert.reason.wrong-name': '它是为其他名称签发的，不适用于 {host}。',
  'cert.reason.expired': '它已过期。',
  'cert.reason.not-yet-valid': '它尚未生效（请检查这台电脑的日期和时间）。',
  'cert.reason.revoked': '它已被颁发机构吊销。',
  'cert.reason.invalid': '它不是有效的服务器证书。',
  'cert.server': '服务器',
  'cert.subject': '颁发给',
  'cert.issuer': '颁发者',
  'cert.issuerSelf': '自身（自签名）',
  'cert.validity': '有效期',
  'cert.validRange': '{from} 至 {until}',
  'cert.expired': '已过期',
  'cert.notYetValid': '尚未生效',
  'cert.names': '名称',
  'cert.noNames': '无',
  'cert.unknown': '未知',
  'cert.fingerprint': 'SHA-256 指纹',
  'cert.trust': '为此账号信任此证书',
  'cert.trustNew': '信任新证书',

  'header.transfers': '传输',
  'header.history': '历史记录',
  'header.settings': '设置',
  'header.signOut': '退出登录',
  'header.views': '视图',
  'header.demo': '演示',
  'header.demoTip': '已连接到本机演示服务器',

  'conn.signedOut': '未登录',
  'conn.connecting': '正在连接…',
  'conn.online': '在线',
  'conn.offline': '离线',
  'conn.offlineReason': '离线：{reason}',
  'conn.reconnectingIn': '{n} 秒后重新连接',
  'conn.reconnectingNow': '正在重新连接…',
  'conn.resuming': '连接中断，正在恢复…',
  'conn.secure': '加密连接（TLS），登录方式 {mechanism}',
  'conn.insecure': '未加密的连接，登录方式 {mechanism}',

  'contacts.title': '联系人',
  'contacts.search': '搜索联系人',
  'contacts.searchPlaceholder': '搜索联系人',
  'contacts.empty': '还没有联系人。',
  'contacts.noMatch': '没有与“{q}”匹配的联系人。',
  'contacts.sendFile': '发送文件…',
  'contacts.sendFileTo': '给 {name} 发送文件',
  'contacts.online': '{n} 人在线',
  'contacts.pending': '等待对方授权',
  'contacts.dropTo': '松开即可发送给 {name}',
  'contacts.dropToUpload': '松开即可上传并发送给 {name}',
  'contacts.sendFileToUpload': '给 {name} 发送文件：对方离线，文件将上传到你的服务器并以链接形式发送',

  'presence.available': '在线',
  'presence.away': '离开',
  'presence.dnd': '请勿打扰',
  'presence.offline': '离线',

  'transfers.title': '传输',
  'transfers.emptyTitle': '还没有传输',
  'transfers.emptyBody': '把文件或文件夹拖到联系人上，或点击“发送文件…”。',
  'transfers.clearFinished': '清除已结束',
  'transfers.active': '{n} 个进行中',

  'dir.incoming': '接收',
  'dir.outgoing': '发送',
  'transfer.to': '发给 {peer}',
  'transfer.from': '来自 {peer}',

  'route.s5b-direct': '直连',
  'route.s5b-proxy': '代理',
  'route.ibb': '带内',
  'route.upload': '上传',
  'route.oob': '链接',
  'route.tip.s5b-direct': '两台电脑之间直接连接（SOCKS5）',
  'route.tip.s5b-proxy': '经 SOCKS5 代理中转',
  'route.tip.s5b-proxyVia': '经代理 {host} 中转',
  'route.tip.ibb': '通过 XMPP 连接本身发送（较慢，但到处可用）',
  'route.tip.upload': '通过 HTTP 上传到服务器',
  'route.tip.oob': '通过链接获取',

  'state.offered': '待答复',
  'state.accepted': '正在开始',
  'state.active': '传输中',
  'state.completed': '已完成',
  'state.failed': '失败',
  'state.rejected': '已拒绝',
  'state.cancelled': '已取消',
  'state.interrupted': '已中断',

  'transfer.waitingPeer': '等待 {peer} 接受…',
  'transfer.waitingYou': '等待你的答复',
  'transfer.connecting': '正在连接…',
  'transfer.left': '剩余 {eta}',
  'transfer.doneIn': '用时 {duration} · {speed}',
  'transfer.resumedFrom': '从 {bytes} 处继续',
  'transfer.willContinue': '{peer} 再次发送时会自动继续。',
  'transfer.linkResume': '点击“继续”可接着下载链接的剩余部分。',
  'transfer.progressLabel': '{name}：已完成 {percent}%',
  'transfer.cancel': '取消',
  'transfer.open': '打开',
  'transfer.showInFolder': '在文件夹中显示',
  'transfer.resume': '继续',
  'transfer.retry': '重试',
  'transfer.uploadInstead': '改用上传发送',
  'transfer.uploadInsteadTip': '把文件上传到你的服务器，再把下载链接发给对方',
  'transfer.accept': '接受…',
  'transfer.decline': '拒绝',
  'transfer.dismiss': '从列表中移除',

  'verify.badge.sha256': '已校验',
  'verify.badge.md5': '已校验（MD5）',
  'verify.badge.none': '未校验',
  'verify.badge.confirmed': '已确认',
  'verify.badge.unconfirmed': '未确认',
  'verify.line.sha256': '已接收 · 已校验（SHA-256）',
  'verify.line.md5': '已接收 · 已校验（MD5）',
  'verify.line.none': '已接收 · 未校验',
  'verify.line.confirmed': '已发送 · 接收方已确认',
  'verify.line.unconfirmed': '已发送 · 未确认',
  'verify.tip.sha256': '整个文件的 SHA-256 校验和与发送方的一致：文件完好无损。',
  'verify.tip.md5': '文件的 MD5 校验和与发送方提供的一致。发送方没有提供 SHA-256，MD5 的校验较弱。',
  'verify.tip.none': '只检查了文件大小：发送方没有提供校验和（例如通过链接发送，或使用其他应用），传输途中的损坏无法被发现。',
  'verify.tip.confirmed': '接收方已核对整个文件，并确认文件完好送达。',
  'verify.tip.unconfirmed': '没有人确认文件完好送达：接收方没有核对文件（例如通过上传或链接发送，或对方使用其他应用）。',

  'offer.title': '收到文件',
  'offer.wants': '{name} 想给你发送一个文件',
  'offer.notContact': '对方不在你的联系人列表中。只接收你预期的文件。',
  'offer.from': '发送者',
  'offer.file': '文件',
  'offer.size': '大小',
  'offer.sizeUnknown': '开始下载后才知道',
  'offer.description': '留言',
  'offer.saveTo': '保存到',
  'offer.change': '更改…',
  'offer.accept': '接受',
  'offer.decline': '拒绝',
  'offer.queue': '第 {i} 个，共 {n} 个',
  'offer.hint': '按 Enter 接受 · 按 Esc 拒绝',

  'history.title': '历史记录',
  'history.contact': '联系人',
  'history.anyContact': '全部联系人',
  'history.direction': '方向',
  'history.anyDirection': '发送和接收',
  'history.sent': '已发送',
  'history.received': '已接收',
  'history.state': '状态',
  'history.anyState': '任意状态',
  'history.since': '从',
  'history.until': '到',
  'history.search': '按文件名搜索',
  'history.reset': '重置筛选',
  'history.col.file': '文件',
  'history.col.peer': '联系人',
  'history.col.size': '大小',
  'history.col.state': '状态',
  'history.col.route': '方式',
  'history.col.date': '时间',
  'history.col.actions': '操作',
  'history.empty': '没有符合筛选条件的传输。',
  'history.emptyAll': '还没有发送或接收过文件。',
  'history.loading': '正在加载…',
  'history.count.one': '{n} 条传输',
  'history.count.other': '{n} 条传输',
  'history.limited': '仅显示最近 {n} 条。缩小筛选范围可查看更早的记录。',
  'history.open': '打开',
  'history.showInFolder': '在文件夹中显示',
  'history.resend': '重新发送',
  'history.resume': '继续',
  'history.uploadInstead': '改用上传发送',
  'history.remove': '从历史记录中删除',
  'history.removed': '已从历史记录中删除“{name}”。',

  'settings.title': '设置',
  'settings.receiving': '接收',
  'settings.downloadDir': '下载文件夹',
  'settings.downloadDirNone': '未设置',
  'settings.autoAccept': '自动接收联系人发来的文件',
  'settings.autoAcceptUpTo': '最大',
  'settings.autoAcceptHelp': '超过此大小的文件，以及非联系人发来的文件，总是先询问。',
  'settings.network': '网络',
  'settings.methods': '传输方式（按优先顺序）',
  'settings.methodsHelp': '如果允许的方式都不可用，传输会失败。',
  'settings.methodsRequired': '请至少保留一种传输方式。',
  'settings.allowUpload': '无法直接传输时通过 HTTP 上传发送',
  'settings.allowUploadHelp': '联系人离线或其应用不支持直接传输时，文件会上传到你的服务器并以链接形式发送。传输失败时也可改用上传。',
  'settings.serveHttp': '允许同一网络中的联系人从这台电脑下载文件',
  'settings.serveHttpHelp': '使用一次性的明文 HTTP 链接（jabber:iq:oob）。不加密，请只在可信的网络中使用。',
  'settings.strangers': '不在联系人列表中的人发来的文件',
  'settings.strangersAsk': '询问我',
  'settings.strangersRefuse': '拒收',
  'settings.strangersHelp': '询问：每个文件都由你决定，从不自动接收。拒收：立即告知对方，这里不会显示。',
  'settings.proxy': 'SOCKS5 代理',
  'settings.proxyPlaceholder': '从服务器自动发现',
  'settings.proxyHelp': 'proxy65 服务的地址，例如 proxy.example.com。留空则使用服务器提供的代理。',
  'settings.moveUp': '上移',
  'settings.moveDown': '下移',
  'settings.appearance': '外观',
  'settings.language': '语言',
  'settings.theme': '主题',
  'settings.advanced': '高级选项',
  'settings.streamhosts': '直连时提供的地址',
  'settings.streamhostsPlaceholder': '本机所有地址',
  'settings.streamhostsHelp': '每行一个 IP 地址。留空则使用本机所有可用地址。',
  'settings.badAddress': '“{addr}”不是有效的 IP 地址。',
  'settings.saved': '设置已保存。',

  'method.s5b': 'SOCKS5 字节流（直连或经代理）',
  'method.ibb': '带内字节流（经服务器，较慢）',

  'theme.system': '跟随系统',
  'theme.light': '浅色',
  'theme.dark': '深色',

  'toast.sending.one': '正在给 {name} 发送 1 个文件',
  'toast.sending.other': '正在给 {name} 发送 {n} 个文件',
  'toast.dropOnContact': '请把文件拖到联系人上再松开。',
  'toast.subscription': '{jid} 请求查看你的在线状态。',
  'toast.offersRefused.one': '已拒收 {jid} 的 1 个文件：等待答复的文件太多。',
  'toast.offersRefused.other': '已拒收 {jid} 的 {n} 个文件：等待答复的文件太多。',
  'toast.dismiss': '关闭',

  'drop.hint': '拖到联系人上即可发送',
  'drop.uploadHint': '对方离线——文件将上传到你的服务器并以链接形式发送',

  'sendTo.title.one': '发送 1 个文件',
  'sendTo.title.other': '发送 {n} 个文件',
  'sendTo.files': '要发送的文件',
  'sendTo.choose': '选择要发送给哪位联系人。',
  'sendTo.list': '可发送的联系人',
  'sendTo.upload': '对方离线——将上传到你的服务器并以链接形式发送',
  'sendTo.unavailable': '对方离线——在设置中允许 HTTP 上传后才能发送给离线联系人',
  'sendTo.hint': '按 ↑ ↓ 选择 · 按 Enter 发送 · 按 Esc 取消',
};

export const dictionaries: Record<Language, Record<Key, string>> = { en, 'zh-CN': zhCN };

export const LANGUAGES: readonly Language[] = ['en', 'zh-CN'];

let current: Language = 'en';
const listeners = new Set<(lang: Language) => void>();

export function language(): Language {
  return current;
}

export function isLanguage(v: unknown): v is Language {
  return v === 'en' || v === 'zh-CN';
}

/** The best UI language for a list of preferred languages (navigator.languages). */
export function pickLanguage(preferred: readonly string[]): Language {
  for (const p of preferred) {
    const l = p.toLowerCase();
    if (l === 'zh' || l.startsWith('zh-cn') || l.startsWith('zh-hans') || l === 'zh-sg') return 'zh-CN';
    if (l.startsWith('en')) return 'en';
  }
  return 'en';
}

export function hasKey(key: string): key is Key {
  return Object.prototype.hasOwnProperty.call(en, key);
}

/** The string for `key` with `{name}` placeholders filled in. */
export function t(key: Key, vars?: Record<string, string | number>, lang: Language = current): string {
  const s = dictionaries[lang]?.[key] ?? en[key] ?? key;
  if (!vars) return s;
  return s.replace(/\{(\w+)\}/g, (m, name: string) => (name in vars ? String(vars[name]) : m));
}

/** `key.one` / `key.other` by the language's plural rules, with `{n}` = count. */
export function tn(
  key: string,
  n: number,
  vars: Record<string, string | number> = {},
  lang: Language = current,
): string {
  const rule = new Intl.PluralRules(lang).select(n);
  const k = `${key}.${rule}`;
  const chosen = hasKey(k) ? k : (`${key}.other` as Key);
  return t(chosen, { n, ...vars }, lang);
}

/** `t` for a key built at run time; falls back to `fallback` when there is no such key. */
export function tDynamic(key: string, fallback: string, vars?: Record<string, string | number>): string {
  return hasKey(key) ? t(key, vars) : fallback;
}

export function setLanguage(lang: Language, doc: Document | null = typeof document === 'undefined' ? null : document): void {
  const changed = lang !== current;
  current = lang;
  if (doc) {
    doc.documentElement.lang = lang;
    applyI18n(doc.body);
    doc.title = t('app.name');
  }
  if (changed) for (const fn of listeners) fn(lang);
}

export function onLanguageChange(fn: (lang: Language) => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

const ATTRS: [string, string][] = [
  ['data-i18n-placeholder', 'placeholder'],
  ['data-i18n-title', 'title'],
  ['data-i18n-aria-label', 'aria-label'],
];

/** Refreshes every element under `root` that names its text with `data-i18n*`. */
export function applyI18n(root: ParentNode | null): void {
  if (!root) return;
  for (const el of root.querySelectorAll<HTMLElement>('[data-i18n]')) {
    const key = el.dataset.i18n!;
    if (hasKey(key)) el.textContent = t(key);
  }
  for (const [data, attr] of ATTRS) {
    for (const el of root.querySelectorAll<HTMLElement>(`[${data}]`)) {
      const key = el.getAttribute(data)!;
      if (hasKey(key)) el.setAttribute(attr, t(key));
    }
  }
}
