/*
 * doorbell_fd.pml -- SPIN model of the doorbell file descriptor: an
 * attached host that blocks in its own event loop (epoll_wait on a set of
 * descriptors that includes its CPU's eventfd) and the senders that queue
 * calls for that CPU and write the eventfd when the host needs it. The
 * host's `loop_wait` guard brackets each blocking call of its loop. See
 * model/README.md; the sleep/wake handshake it extends is doorbell.pml's.
 *
 *   sender                                 host (one episode: loop_wait)
 *   ------                                 ------------------------------
 *   push; was the queue empty?             ctor: host_state = loop_blocked
 *   if it was:                                   seq_cst fence
 *     seq_cst fence                              may_block = (queue empty)
 *     if host_state == loop_blocked:       epoll_wait(fds, may_block ? -1 : 0)
 *       CAS loop_blocked -> polling        dtor: old = exchange(host_state,
 *       if the CAS won: write(eventfd)                          running)
 *                                                if old == polling (a sender
 *                                                won the CAS: a write is owed):
 *                                                  poll(fd, POLLIN, -1)
 *                                                  read(fd)     (counter = 0)
 *                                          drain: take everything, run it
 *
 * Between episodes the host runs its own code (running: no ring, no drain;
 * the calls wait for the next episode, as poll delivery promises). Once all
 * the calls have run it drains once more and detaches: close(eventfd).
 *
 * Properties (the fenced model holds them all):
 *  - no lost wake-up: never is the host blocked in epoll_wait(-1) with work
 *    queued, the eventfd counter 0 and no sender owing a write (a sender
 *    owes one from a push that found the queue empty to the end of its
 *    ring). Checked in every state by the `invariant` process; SPIN also
 *    reports the consequence, the host blocked for good with work queued,
 *    as an invalid end state.
 *  - at most one write per episode: a write finds the counter at 0 (so it
 *    never exceeds 1) and happens inside an episode: between the host's
 *    store of loop_blocked and the step-3 exchange (old == loop_blocked) or
 *    the read that consumes the write (old == polling).
 *  - no write after close: the writing sender asserts the fd is open, and
 *    when the host closes no sender is between its winning CAS and its write.
 *  - no stale readiness: after step 3 the counter is 0; at the end the queue
 *    is empty and every pushed call ran exactly once.
 *
 * Switches (spin -a -D...):
 *   NO_HOST_FENCE    drop the ctor's fence: the host's load of the queue may
 *                    be performed before its store of loop_blocked is
 *                    visible. SPIN must find a lost wake-up.
 *   NO_SENDER_FENCE  drop the sender's fence: its load of host_state may be
 *                    performed before its push is visible. SPIN must find a
 *                    lost wake-up.
 *   STORE_NOT_EXCHANGE  step 3 is a load of host_state, then a plain store
 *                    of running (not one RMW): a CAS between the two wins,
 *                    and its write lands after the host moved on. SPIN must
 *                    find a write outside an episode, a stale count or a
 *                    write after close.
 *   NEVER_READ       step 3 stores running and never reads the fd (the host
 *                    counts on epoll_wait alone). SPIN must find a stale
 *                    count left for the next epoll_wait.
 *   OTHER_FDS        epoll_wait(-1) may also return with the eventfd not
 *                    readable (another descriptor of the loop fired, or a
 *                    signal: EINTR); the base model has only the eventfd.
 *   NSENDERS=n       senders (default 3); PUSHES=n pushes each (default 2).
 *
 * SPIN is sequentially consistent: every store is visible to every process
 * at once and each process runs its statements in order. The fenced model is
 * therefore the handshake as the seq_cst fences make it behave; a dropped
 * fence is modelled by the one reordering that fence forbids, chosen
 * nondeterministically, as in doorbell.pml. Granularity: one statement per
 * memory access or system call; `atomic { }` only around one atomic
 * instruction or system call (push, take_all, the exchange, the CAS, the
 * eventfd's write and read) or around ghost bookkeeping.
 */

#ifndef NSENDERS
#define NSENDERS 3
#endif
#ifndef PUSHES
#define PUSHES 2
#endif
#define WORK (NSENDERS * PUSHES)         /* calls the host must run */

#define RUNNING      0                   /* host in its own code: no ring */
#define POLLING      1                   /* no ring needed (a CAS took it) */
#define LOOP_BLOCKED 2                   /* about to block: write the fd */

/* ---- shared state ------------------------------------------------------ */

byte queued = 0;        /* calls in the CPU's queue (its head pointer is
                           non-null iff queued != 0) */
byte host_state = RUNNING;
byte counter = 0;       /* the eventfd's counter */
bit  closed = 0;        /* the host detached: the eventfd is closed */

/* ---- ghost state for the properties ------------------------------------ */

bit  blocked = 0;       /* the host is in step 2's epoll_wait(-1) */
bit  in_episode = 0;    /* a write is allowed: from the store of
                           loop_blocked until step 3 is over with it */
byte owes = 0;          /* senders between a push that found the queue
                           empty and the end of their ring */
byte writers = 0;       /* senders between a winning CAS and their write */
byte ran = 0;           /* calls the host has run */

/* ---- the host ------------------------------------------------------------ */

active proctype host() {
  byte got;
  byte old;
  bool may_block;

  do
  :: ran == WORK -> break                /* bounded: detach once every call
                                            has run (the real loop goes on,
                                            and blocks with nothing to miss) */
  :: else ->
    /* 1. loop_wait's ctor: announce, fence, re-check (resume = running) */
#ifndef NO_HOST_FENCE
    atomic { host_state = LOOP_BLOCKED; in_episode = 1 };
    /* store_load_fence() */
    may_block = (queued == 0);
#else
    if
    :: atomic { host_state = LOOP_BLOCKED; in_episode = 1 };
       may_block = (queued == 0)
    :: may_block = (queued == 0);        /* the load is performed first ... */
       atomic { host_state = LOOP_BLOCKED; in_episode = 1 }  /* ... the
                                            store is seen later */
    fi;
#endif

    /* 2. the loop's epoll_wait: it returns when the eventfd is readable
       (its other descriptors never fire here, unless OTHER_FDS) */
    if
    :: may_block ->
      blocked = 1;
#ifndef OTHER_FDS
      atomic { counter > 0 -> blocked = 0 }
#else
      if
      :: atomic { counter > 0 -> blocked = 0 }
      :: blocked = 0                     /* another fd fired, or EINTR */
      fi
#endif
    :: else                              /* epoll_wait(0): no blocking */
    fi;
    may_block = false;

    /* 3. loop_wait's dtor: take host_state back; a sender whose CAS took
       loop_blocked owes a write, which must be consumed here, not by the
       next epoll_wait (nor land after close) */
#if defined(NEVER_READ)
    atomic { host_state = RUNNING; in_episode = 0 };
    old = LOOP_BLOCKED;                  /* never looks, never reads */
#elif defined(STORE_NOT_EXCHANGE)
    old = host_state;
    atomic {
      host_state = RUNNING;
      if
      :: old == LOOP_BLOCKED -> in_episode = 0  /* believes nobody took it */
      :: else
      fi
    };
#else
    atomic {                             /* the exchange: one RMW */
      old = host_state;
      host_state = RUNNING;
      if
      :: old == LOOP_BLOCKED -> in_episode = 0  /* nobody took it: no write
                                                   is owed, none can come */
      :: else
      fi
    };
#endif
    if
    :: old == POLLING ->
      counter > 0;                       /* poll(fd, POLLIN, -1): the writer
                                            may not have written yet */
      atomic { counter = 0; in_episode = 0 }  /* read(fd) */
    :: else
    fi;
    old = 0;
    assert(counter == 0);                /* no stale readiness for the next
                                            epoll_wait */

    /* 4. drain (the end of the guard is a safe point): take_all, a peek of
       the head, then the exchange; run the batch */
    if
    :: queued == 0
    :: else ->
      atomic { got = queued; queued = 0 };
      ran = ran + got;
      got = 0
    fi
  od;

  /* detach: a last drain, then close the eventfd */
  if
  :: queued == 0
  :: else ->
    atomic { got = queued; queued = 0 };
    ran = ran + got;
    got = 0
  fi;
  atomic {
    assert(writers == 0);                /* nobody is about to write */
    closed = 1
  };
  assert(queued == 0 && ran == WORK)
}

/* ---- the senders ------------------------------------------------------- */

proctype sender() {
  byte n = 0;
  bool was_empty;
  bool seen;                             /* host_state == LOOP_BLOCKED read */

  do
  :: n == PUSHES -> break
  :: else ->
#ifdef NO_SENDER_FENCE
    if
    :: skip                              /* in order, as with the fence */
    :: /* the load of host_state is performed before the push is seen */
      seen = (host_state == LOOP_BLOCKED);
      atomic {
        was_empty = (queued == 0);
        queued++;
        if
        :: was_empty && seen -> owes++
        :: else                          /* no ring: done already */
        fi
      };
      goto ring
    fi;
#endif
    /* push(): the successful CAS of the lock-free list (a failed CAS
       changes nothing and retries) */
    atomic {
      was_empty = (queued == 0);
      queued++;
      if
      :: was_empty -> owes++
      :: else
      fi
    };
    if
    :: !was_empty -> goto pushed         /* a burst costs one write at most */
    :: else
    fi;
    /* store_load_fence(), then load host_state */
    atomic {
      seen = (host_state == LOOP_BLOCKED);
      if
      :: !seen -> owes--                 /* running or polling: no write */
      :: else
      fi
    };
ring:
    if
    :: was_empty && seen ->
      /* CAS loop_blocked -> polling: the winner owes the write */
      atomic {
        if
        :: host_state == LOOP_BLOCKED -> host_state = POLLING; writers++
        :: else -> seen = false; owes--  /* another sender took it, or the
                                            host's step 3 did */
        fi
      };
      if
      :: seen ->
        atomic {                         /* write(eventfd, 1) */
          assert(!closed);
          assert(in_episode);
          counter++;
          assert(counter <= 1);          /* one write per episode */
          writers--;
          owes--
        }
      :: else
      fi
    :: else
    fi;
pushed:
    was_empty = false;
    seen = false;
    n++
  od
}

/* ---- the lost wake-up, checked in every reachable state ------------------ */

active proctype invariant() {
  assert(!(blocked && queued != 0 && counter == 0 && owes == 0))
}

init {
  byte i = 0;
  atomic {
    do
    :: i == NSENDERS -> break
    :: else -> run sender(); i++
    od
  }
}
