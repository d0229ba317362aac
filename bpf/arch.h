/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Architecture facts the BPF programs depend on, in one place: system call numbers, the flags
 * they test, and where each calling convention keeps its arguments. x86-64 only today: another
 * architecture is another block here (and its vmlinux.h under bpf/<arch>/). */
#ifndef AGT_ARCH_H
#define AGT_ARCH_H

#if defined(__TARGET_ARCH_x86)
/* System call numbers (arch/x86/entry/syscalls/syscall_64.tbl). */
#define AGT_NR_READ 0
#define AGT_NR_WRITE 1
#define AGT_NR_READV 19
#define AGT_NR_WRITEV 20
#define AGT_NR_SENDTO 44
#define AGT_NR_RECVFROM 45
#define AGT_NR_SENDMSG 46
#define AGT_NR_RECVMSG 47

/* The system call's arguments in a struct pt_regs (the syscall convention). */
#define AGT_SYSCALL_ARG1(regs) ((regs)->di)
#define AGT_SYSCALL_ARG2(regs) ((regs)->si)
#define AGT_SYSCALL_ARG3(regs) ((regs)->dx)
#define AGT_SYSCALL_NR(regs) ((regs)->orig_ax)

/* Function arguments 1..6 of the C ABI (System V AMD64) and of Go's register ABI
 * (ABIInternal: rax, rbx, rcx, rdi, rsi, r8), read from the uprobe's pt_regs. */
#define AGT_SYSV_ARGS(X) X(di), X(si), X(dx), X(cx), X(r8), X(r9)
#define AGT_GO_ARGS(X) X(ax), X(bx), X(cx), X(di), X(si), X(r8)
#else
#error "agtrace's BPF programs know x86-64 only; add the architecture's facts to bpf/arch.h"
#endif
#endif
